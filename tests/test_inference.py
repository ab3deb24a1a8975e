"""The Predictor contract: any common image input, the documented fields, clear errors for bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image

from mmdemo import load_predictor
from mmdemo.checkpoint import save_checkpoint
from mmdemo.inference import MAX_PIXELS, InputError, Prediction, Predictor, load_image
from mmdemo.model import FusionRNN
from mmdemo.tasks.sort_of_clevr import data as soc


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    folder = tmp_path_factory.mktemp("ck")
    save_checkpoint(FusionRNN(tiny_config()), folder)
    return load_predictor(str(folder), device="cpu")


@pytest.fixture(scope="module")
def scene_image() -> np.ndarray:
    return soc.generate("test", 1)[0].image


def test_prediction_fields(predictor: Predictor, scene_image: np.ndarray) -> None:
    p = predictor.predict(scene_image, "What shape is the red object?")
    assert isinstance(p, Prediction)
    assert p.answer in p.probs and abs(sum(p.probs.values()) - 1) < 1e-5
    assert p.tokens[0] == "[CLS]" and p.tokens[-1] == "[SEP]" and "red" in p.tokens
    t, (h, w) = len(p.tokens), p.grid
    assert np.asarray(p.region_attention).shape == (t, h * w)
    assert np.allclose(np.asarray(p.region_attention).sum(1), 1, atol=1e-5)
    assert len(p.step_attention) == t and abs(sum(p.step_attention) - 1) < 1e-5
    assert not p.truncated
    assert set(p.to_dict()) >= {"answer", "probs", "tokens", "region_attention", "grid", "step_attention"}


def test_pil_array_path_and_bytes_agree(predictor: Predictor, scene_image: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "scene.png"
    Image.fromarray(scene_image).save(path)
    q = "How many objects have the same shape as the blue object?"
    results = [predictor.predict(x, q).probs for x in (scene_image, Image.fromarray(scene_image), str(path), path, path.read_bytes())]
    for r in results[1:]:
        assert r == pytest.approx(results[0], abs=1e-6)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA", "CMYK", "1"])
def test_odd_image_modes_are_converted(predictor: Predictor, scene_image: np.ndarray, mode: str) -> None:
    im = Image.fromarray(scene_image)
    im = im.convert("I").convert("I;16") if mode == "I;16" else im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format="TIFF" if mode in ("I;16", "CMYK") else "PNG")
    assert predictor.predict(buf.getvalue(), "Is the red object at the top?").answer in predictor.cfg.labels


def test_transparent_background_becomes_white() -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    assert (np.asarray(load_image(rgba)) == 255).all()


def test_animated_gif_uses_first_frame(predictor: Predictor, scene_image: np.ndarray) -> None:
    frames = [Image.fromarray(scene_image), Image.fromarray(255 - scene_image)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert load_image(buf.getvalue()).size == (75, 75)


def test_non_square_images_are_padded_not_stretched(predictor: Predictor) -> None:
    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    out = predictor.prepare(wide)
    assert out.shape == (75, 75, 3)
    assert (out[0] == 255).all() and (out[37] == 0).all()


@pytest.mark.parametrize(
    "bad, message",
    [
        (None, "No image"),
        (b"this is not an image", "Not a readable image"),
        ("/no/such/file.png", "not found"),
        (np.zeros((0, 5, 3), dtype=np.uint8), "shape"),
        (12345, "Unsupported image type"),
    ],
)
def test_bad_images_raise_input_error(predictor: Predictor, bad: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        predictor.predict(bad, "What shape is the red object?")


def test_truncated_png_is_reported(predictor: Predictor, scene_image: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(scene_image).save(buf, format="PNG")
    with pytest.raises(InputError):
        predictor.predict(buf.getvalue()[:200], "What shape is the red object?")


def test_decompression_bomb_is_refused_before_decoding(predictor: Predictor) -> None:
    side = int(MAX_PIXELS**0.5) + 2000
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")  # tiny file, huge image
    assert len(buf.getvalue()) < 5_000_000
    with pytest.raises(InputError, match="too large"):
        predictor.predict(buf.getvalue(), "What shape is the red object?")


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\u200b", None])
def test_empty_question(predictor: Predictor, scene_image: np.ndarray, text: str | None) -> None:
    with pytest.raises(InputError, match="empty"):
        predictor.predict(scene_image, text)


@pytest.mark.parametrize(
    "text",
    [
        "what shape is the red object? " * 400,  # endless
        "What shape is the 🔴 red object? 🤔",
        "ما شكل الجسم الأحمر؟ red",
        "<script>alert(1)</script> Is the red object on the left?",
        "Is the red\tobject\r\non the left?\x07",
    ],
)
def test_odd_text_still_answers(predictor: Predictor, scene_image: np.ndarray, text: str) -> None:
    p = predictor.predict(scene_image, text)
    assert p.answer in predictor.cfg.labels
    assert len(p.tokens) <= predictor.cfg.max_tokens
    assert p.truncated == (len(text) > 1000)


def test_served_text_cache_is_bounded(predictor: Predictor, scene_image: np.ndarray) -> None:
    """A server sees endless new questions: the contextual-state cache keeps only the most recent ones."""
    from mmdemo.inference import TEXT_CACHE_ITEMS
    from mmdemo.text import tokenize

    text = predictor.model.text
    assert text.kind == "minilm" and text.cache_size <= TEXT_CACHE_ITEMS
    saved = text.cache_size
    try:
        text.cache_size = 4
        answers = [predictor.predict(scene_image, f"Is the red object number {i} on the left?").answer for i in range(7)]
        assert len(text._cache) == 4
        first = tuple(tokenize(["Is the red object number 0 on the left?"], predictor.cfg.max_tokens)[0][0])
        last = tuple(tokenize(["Is the red object number 6 on the left?"], predictor.cfg.max_tokens)[0][0])
        assert first not in text._cache and last in text._cache  # the oldest question was evicted, the newest kept
        again = predictor.predict(scene_image, "Is the red object number 0 on the left?")  # evicted: computed afresh
        assert again.answer == answers[0]
    finally:
        text.cache_size = saved


# ------------------------------------------------------------------------- hostile inputs (issue 16)


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "image", [_png(Image.new("RGB", (20000, 1))), np.zeros((1, 20000, 3)), np.zeros((10000, 1), dtype=np.uint8)], ids=["png", "floats", "uint8"]
)
def test_a_side_past_the_limit_is_refused_without_allocating(predictor: Predictor, scene_image: np.ndarray, image: object) -> None:
    """A 20000 x 1 PNG was padded to a 20000 x 20000 square first: 1.2 GB for a 160-byte file."""
    from conftest import peak_rise_mb

    predictor.predict(scene_image, "What shape is the red object?")  # MiniLM is loaded before measuring
    error, peak = peak_rise_mb(predictor.predict, image, "What shape is the red object?")
    assert isinstance(error, InputError) and "longest side" in str(error)
    assert peak < 50


@pytest.mark.parametrize(
    "image", [_png(Image.new("RGB", (8000, 1))), np.zeros((1, 8000, 3)), _png(Image.new("RGBA", (5000, 5000), (9, 9, 9, 99)))], ids=["thin", "floats", "25mp-rgba"]
)
def test_the_largest_allowed_images_stay_small_in_memory(predictor: Predictor, scene_image: np.ndarray, image: object) -> None:
    """Within the limits a long thin image, a float array and a 25-megapixel RGBA image each cost under 150 MB."""
    from conftest import peak_rise_mb

    predictor.predict(scene_image, "What shape is the red object?")  # MiniLM is loaded before measuring
    pred, peak = peak_rise_mb(predictor.predict, image, "What shape is the red object?")
    assert isinstance(pred, Prediction) and peak < 150


def test_huge_images_are_box_reduced_like_pillow(scene_image: np.ndarray) -> None:
    """Images past WORK_SIDE are reduced by a band at a time: the same pixels as Pillow's reduce() of the whole."""
    from mmdemo.processing import WORK_SIDE, _shrink

    rgba = Image.fromarray(np.random.default_rng(0).integers(0, 256, (WORK_SIDE + 300, 700, 4), dtype=np.uint8))
    assert np.array_equal(np.asarray(_shrink(rgba)), np.asarray(rgba.reduce(2)))
    small = Image.fromarray(scene_image)
    assert _shrink(small) is small


def test_text_past_the_limit_is_refused(predictor: Predictor, scene_image: np.ndarray) -> None:
    from mmdemo.limits import MAX_TEXT_CHARS

    with pytest.raises(InputError, match="too long"):
        predictor.predict(scene_image, "x" * (MAX_TEXT_CHARS + 1))
    assert predictor.predict(scene_image, "\ufdfa" * (MAX_TEXT_CHARS // 2)).answer in predictor.cfg.labels  # NFKC x18


def test_unknown_device_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown device 'bogus'"):
        load_predictor(device="bogus")
