"""Predictor: a raw image and a question (typed, or spoken for an audio checkpoint) in, a Prediction (plain
Python/numpy) out."""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from mmdemo.audio import decode, log_mel, step_times
from mmdemo.checkpoint import DEFAULT, load_checkpoint
from mmdemo.errors import InputError
from mmdemo.limits import MAX_FILE_BYTES, MAX_PIXELS, MAX_TEXT_CHARS, WORK_SIDE, too_large
from mmdemo.model import FusionRNN, ModelOutput, pick_device
from mmdemo.processing import images_to_tensor, pad_token_ids
from mmdemo.text import clean_text, id_to_token, tokenize

__all__ = ["MAX_PIXELS", "ImageInput", "InputError", "Prediction", "Predictor", "load_image", "prepare_image"]
ImageInput = Image.Image | np.ndarray | str | Path | bytes
QuestionInput = str | Path | bytes | tuple  # typed text; spoken: a sound file (path or bytes) or (sample_rate, samples)


@dataclass
class Prediction:
    answer: str
    probs: dict[str, float]  # label -> probability
    tokens: list[str]  # one label per RNN step: the tokenizer's tokens, or for a spoken question each step's end ("0.40s")
    region_attention: list[list[float]]  # (T, R) where each step looked (hop 1); rows sum to 1
    grid: list[int]  # [h, w], R = h * w, regions row-major
    step_attention: list[float]  # (T,) how much each step counts for the answer
    hop_attention: list[list[list[float]]]  # (T, K, R) every attention hop
    truncated: bool  # the question was longer than the model reads (spoken: cut to max_audio_seconds)
    step_times: list[float] | None = None  # spoken: (T,) when each step ends, seconds from the start of the recording
    audio_seconds: float | None = None  # spoken: how much of the recording the model heard
    notice: str = ""  # something the person should know about their input (cut, clipping); safe to show

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode (palette, alpha, 16-bit, grayscale, CMYK) -> RGB; transparency becomes white."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.array(im, dtype=np.float64)
        hi = arr.max() if arr.size and arr.max() > 255 else 255.0
        arr *= 255.0 / hi  # in place: one float copy of the image, not three
        im = Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8), "L")
    if im.mode == "P" or im.mode in ("LA", "La", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def _reduction(size: tuple[int, int]) -> int:
    """The whole factor that brings the longest side down to at most WORK_SIDE (1: leave it)."""
    return -(-max(size) // WORK_SIDE)


def _shrink(im: Image.Image) -> Image.Image:
    """Box-reduce an image longer than WORK_SIDE by a whole factor, in its own mode (before any conversion).

    What the model sees is at most 224 px, so nothing is lost; every image up to WORK_SIDE is untouched."""
    k = _reduction(im.size)
    if k <= 1:
        return im
    if im.mode == "1":
        im = im.convert("L")
    size = (-(-im.width // k), -(-im.height // k))
    if im.mode in ("P", "PA") or im.mode.startswith("I;16"):  # palette indices and 16-bit modes cannot be averaged
        return im.resize(size, Image.Resampling.NEAREST)
    # A band of rows at a time: reduce() of an RGBA image would first make a premultiplied copy of all of it.
    out = Image.new(im.mode, size)
    rows = k * max(1, 256 // k)  # source rows per band, a multiple of k: the same pixels as one reduce(k)
    for y in range(0, im.height, rows):
        out.paste(im.crop((0, y, im.width, min(y + rows, im.height))).reduce(k), (0, y // k))
    out.info.update(im.info)  # EXIF orientation, transparency
    return out


def _array_to_uint8(arr: np.ndarray) -> np.ndarray:
    """A numeric array -> uint8 (floats in [0, 1] are scaled by 255), a band of rows at a time."""
    scale = 255.0 if arr.dtype.kind == "f" and arr.max() <= 1.0 else 1.0
    out = np.empty(arr.shape, dtype=np.uint8)
    rows = max(1, 2**20 // max(1, arr[0].size))  # ~8 MB of float64 at a time, whatever the array's size
    for i in range(0, arr.shape[0], rows):
        out[i : i + rows] = np.clip(arr[i : i + rows] * scale, 0, 255)
    return out


def _from_array(arr: np.ndarray) -> Image.Image:
    """An HxW, HxWx3 or HxWx4 array -> PIL image; the shape and size are checked before any copy."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise InputError(f"Image array must be HxW, HxWx3 or HxWx4, got shape {arr.shape}.")
    if (problem := too_large(arr.shape[1], arr.shape[0])) is not None:
        raise InputError(problem)
    if arr.dtype.kind not in "buif":
        raise InputError(f"Image array must hold numbers, got dtype {arr.dtype}.")
    return Image.fromarray(arr if arr.dtype == np.uint8 else _array_to_uint8(arr))


def _read_bytes(image: str | Path | bytes | bytearray) -> bytes:
    """The bytes of an image file or buffer, refused above MAX_FILE_BYTES before reading."""
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    else:
        path = Path(image)
        if not path.is_file():
            raise InputError(f"Image file not found: {path.name or path}")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"Image file is over {MAX_FILE_BYTES // 2**20} MB.")
        data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"Image file is over {MAX_FILE_BYTES // 2**20} MB.")
    return data


def _decode(data: bytes) -> Image.Image:
    """Decode the first frame; the size is checked from the header, before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if (problem := too_large(*im.size)) is not None:
                raise InputError(problem)
            im = next(iter(ImageSequence.Iterator(im)))  # first frame of an animation
            if im.format == "JPEG" and (k := _reduction(im.size)) > 1:
                im.draft(im.mode, (im.width // k, im.height // k))  # decode at 1/2, 1/4 or 1/8 scale
            im.load()
            return im
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"Not a readable image ({type(e).__name__}).") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise InputError(f"The image file is damaged or unsupported: {str(e)[:120]}") from None


def load_image(image: ImageInput) -> Image.Image:
    """Open and check an image from a PIL image, an array, a path or bytes -> RGB, at most WORK_SIDE px; raises InputError."""
    if image is None:
        raise InputError("No image given: upload an image or pick an example.")
    if isinstance(image, np.ndarray):
        im = _from_array(image)
    elif isinstance(image, Image.Image):
        im = image
    elif isinstance(image, (str, Path, bytes, bytearray)):
        im = _decode(_read_bytes(image))
    else:
        raise InputError(f"Unsupported image type: {type(image).__name__}.")
    if (problem := too_large(*im.size)) is not None:
        raise InputError(problem)
    if min(im.size) < 1:
        raise InputError("Image is empty.")
    try:
        im = ImageOps.exif_transpose(_shrink(im))
        return _to_rgb(im)
    except (OSError, ValueError) as e:
        raise InputError(f"The image could not be decoded: {str(e)[:120]}") from None


def prepare_image(im: Image.Image, size: int) -> np.ndarray:
    """Pad to a square with white (keeps geometry), resize to size x size -> (size, size, 3) uint8.

    An image longer than WORK_SIDE is box-reduced first, so the padded square never exceeds WORK_SIDE^2."""
    im = _shrink(im)
    w, h = im.size
    if w != h:
        side = max(w, h)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(im, ((side - w) // 2, (side - h) // 2))
        im = square
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


TEXT_CACHE_ITEMS = 512  # contextual MiniLM states kept per served model (~25 KB each: a few MB at most)


class Predictor:
    """A loaded checkpoint, ready to answer. Thread-safe: inference only reads the weights."""

    def __init__(self, model: FusionRNN, config: dict[str, Any], device: torch.device, folder: Path) -> None:
        self.model, self.config, self.device, self.folder = model, config, device, folder
        self.cfg = model.cfg
        # Training keeps every distinct question's states; a server sees endless new ones, so bound them.
        if model.text is not None:
            model.text.cache_size = min(model.text.cache_size, TEXT_CACHE_ITEMS)

    @classmethod
    def load(cls, folder: str | Path | None = None, device: str = "auto") -> Predictor:
        dev = pick_device(device)
        folder = Path(folder) if folder is not None else DEFAULT
        model, config = load_checkpoint(folder, dev)
        return cls(model, config, dev, folder)

    def clear_caches(self) -> None:
        """Forget cached frozen features (text states, image features): the next call pays for them."""
        if self.model.text is not None:
            self.model.text.clear_cache()
        cache = getattr(self.model.image, "cache", None)
        if cache is not None:
            cache.clear()

    def prepare(self, image: ImageInput) -> np.ndarray:
        """The exact (size, size, 3) uint8 array the model sees."""
        return prepare_image(load_image(image), self.cfg.image_size)

    @torch.inference_mode()
    def predict(self, image: ImageInput, question: QuestionInput) -> Prediction:
        """Answer one question about one image; raises InputError for input a person can fix.

        Text checkpoints take the question as a string. Spoken ones (question_input audio) take a sound
        file's path or bytes, or (sample_rate, samples) as Gradio's numpy audio gives it."""
        pixels = self.prepare(image)
        if self.cfg.question_input == "audio":
            return self._predict_audio(pixels, question)
        if question is not None and not isinstance(question, str):
            raise InputError("This model reads typed questions: give the question as text.")
        if question is not None and len(question) > MAX_TEXT_CHARS:
            raise InputError(f"The text is too long ({len(question):,} characters; the limit is {MAX_TEXT_CHARS:,}).")
        if question is None or not clean_text(question):
            raise InputError("The question is empty: type a question about the image.")
        ids, truncated = tokenize([question], self.cfg.max_tokens)
        token_ids, mask = pad_token_ids(ids)
        out = self.model(images_to_tensor(pixels[None]).to(self.device), token_ids.to(self.device), mask.to(self.device))
        return self._prediction(out, id_to_token(ids[0]), truncated[0])

    def _predict_audio(self, pixels: np.ndarray, question: QuestionInput) -> Prediction:
        if isinstance(question, str) and (len(question) > 4096 or "\0" in question or (" " in question.strip() and not Path(question).is_file())):
            raise InputError("This model listens: give a recording (a sound file, or sample rate and samples), not text.")
        cfg = self.cfg
        sound = decode(question, cfg.max_audio_seconds, cfg.sample_rate)
        frames = log_mel(sound.samples, cfg.sample_rate, cfg.n_mels, cfg.hop_ms)  # (L, M)
        mask = torch.ones(1, len(frames), dtype=torch.bool)
        out = self.model(images_to_tensor(pixels[None]).to(self.device), frames[None].to(self.device), mask.to(self.device))
        times = step_times(int(out.step_mask[0].sum()), cfg.step_seconds)
        pred = self._prediction(out, [f"{t:.2f}s" for t in times], sound.cut)
        pred.step_times, pred.audio_seconds, pred.notice = times, round(len(sound.samples) / sound.sample_rate, 3), sound.notice
        return pred

    def _prediction(self, out: ModelOutput, tokens: list[str], truncated: bool) -> Prediction:
        probs = out.logits[0].float().softmax(-1).cpu().numpy()
        hops = out.hop_attention[0].float().cpu().numpy()  # (T, K, R)
        return Prediction(
            answer=self.cfg.labels[int(probs.argmax())],
            probs={label: float(p) for label, p in zip(self.cfg.labels, probs)},
            tokens=tokens,
            region_attention=hops[:, 0].tolist(),
            grid=[self.cfg.grid, self.cfg.grid],
            step_attention=out.step_attention[0].float().cpu().tolist(),
            hop_attention=hops.tolist(),
            truncated=bool(truncated),
        )
