"""Spoken-question input: every common form decodes alike, bad input gets a clear message or an answer (never
a traceback), memory stays bounded, features and the audio model are causal and padding-proof."""

from __future__ import annotations

import io
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tiny_config

from mmdemo import audio, load_predictor
from mmdemo.audio import decode, log_mel
from mmdemo.checkpoint import save_checkpoint
from mmdemo.errors import InputError
from mmdemo.inference import Predictor
from mmdemo.model import FusionRNN
from mmdemo.plots import spoken_figure, step_at_time
from mmdemo.tasks.sort_of_clevr import data as soc


def tone_speech(seconds: float = 1.5, rate: int = 16000) -> np.ndarray:
    """A speech-like test signal (a gliding harmonic tone with syllable-rate bursts), float32 in [-0.6, 0.6]."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (0.3 * voice * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)).astype(np.float32)


@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    return tone_speech()


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    folder = tmp_path_factory.mktemp("spoken-ck")
    save_checkpoint(FusionRNN(tiny_config(question_input="audio", audio_channels=8)), folder)
    return load_predictor(str(folder), device="cpu")


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return soc.generate("test", 1)[0].image


def ffmpeg(*args: str) -> None:
    exe = audio.ffmpeg_exe()
    if exe is None:
        pytest.skip("no ffmpeg (imageio-ffmpeg)")
    subprocess.run([exe, "-y", "-loglevel", "error", *args], check=True, timeout=60)


# ------------------------------------------------------------------------------------------ decoding


def test_every_form_decodes_alike(tmp_path: Path, speechlike: np.ndarray) -> None:
    x = speechlike
    int16 = np.round(x * 32767).astype(np.int16)
    sf.write(tmp_path / "q.wav", int16, 16000, subtype="PCM_16")
    sf.write(tmp_path / "q.flac", int16, 16000)
    sf.write(tmp_path / "q.ogg", x, 16000, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "q.mp3", x, 16000, format="MP3")
    forms = {
        "int16 tuple": (16000, int16),
        "float tuple": (16000, x.astype(np.float64)),
        "int32 tuple": (16000, int16.astype(np.int32) << 16),
        "wav path": str(tmp_path / "q.wav"),
        "wav Path": tmp_path / "q.wav",
        "wav bytes": (tmp_path / "q.wav").read_bytes(),
        "flac": str(tmp_path / "q.flac"),
    }
    decoded = {name: decode(q) for name, q in forms.items()}
    for name, a in decoded.items():
        assert a.sample_rate == 16000 and a.samples.dtype == np.float32 and not a.notice and not a.cut, name
        np.testing.assert_allclose(a.samples, decoded["int16 tuple"].samples, atol=1e-4, err_msg=name)
    for lossy in ("q.ogg", "q.mp3"):  # lossy codecs: the same sound, near enough
        a = decode(str(tmp_path / lossy))
        assert abs(len(a.samples) - len(x)) < 0.05 * len(x)
        n = min(len(a.samples), len(x))
        assert np.corrcoef(a.samples[:n], x[:n])[0, 1] > 0.8, lossy  # (MP3 adds a little delay)


def test_decoded_audio_is_decoded_once(predictor: Predictor, scene: np.ndarray, speechlike: np.ndarray) -> None:
    """The app decodes a recording once, for the model and for the time plot: decode passes its Audio through."""
    once = decode((16000, np.tile(speechlike, 12)), max_seconds=2.0)
    assert once.cut and decode(once, max_seconds=2.0) is once
    assert decode(once, max_seconds=1.0).samples.shape == (16000,)  # a tighter cap still cuts
    assert len(decode(once, sample_rate=8000).samples) == len(once.samples) // 2  # another rate is resampled
    a, b = predictor.predict(scene, decode((16000, speechlike))), predictor.predict(scene, (16000, speechlike))
    assert a.probs == b.probs and a.hop_attention == b.hop_attention


def test_browser_recordings_and_video_soundtracks_go_through_ffmpeg(tmp_path: Path, speechlike: np.ndarray) -> None:
    sf.write(tmp_path / "q.wav", speechlike, 16000)
    ffmpeg("-i", str(tmp_path / "q.wav"), "-c:a", "libopus", str(tmp_path / "q.webm"))
    ffmpeg("-i", str(tmp_path / "q.wav"), "-c:a", "aac", str(tmp_path / "q.m4a"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=5:duration=2", "-i", str(tmp_path / "q.wav"), "-shortest", str(tmp_path / "with-sound.mp4"))
    for name in ("q.webm", "q.m4a", "with-sound.mp4"):
        a = decode(str(tmp_path / name))
        assert abs(len(a.samples) - len(speechlike)) < 0.1 * len(speechlike), name
    webm = (tmp_path / "q.webm").read_bytes()
    assert abs(len(decode(webm).samples) - len(speechlike)) < 0.1 * len(speechlike)  # bytes, as an upload arrives


def test_stereo_is_mixed_and_odd_rates_are_resampled(speechlike: np.ndarray) -> None:
    mono = decode((16000, speechlike)).samples
    for stereo in (np.stack([speechlike, speechlike], 1), np.stack([speechlike, speechlike], 0)):  # (N, 2) and (2, N)
        np.testing.assert_allclose(decode((16000, stereo)).samples, mono, atol=1e-6)
    for rate in (8000, 192000):
        x = tone_speech(1.5, rate)
        a = decode((rate, x))
        assert a.source_rate == rate and abs(len(a.samples) - 24000) <= 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: (16000, np.zeros(0, np.int16)), "no samples"),
        (lambda tmp: (16000, np.zeros(800, np.int16)), "ms long"),
        (lambda tmp: (16000, np.zeros(32000, np.int16)), "silent"),
        (lambda tmp: (16000, np.full((4, 4, 4), 0.1)), "shape"),
        (lambda tmp: (100, np.ones(100)), "sample rate"),
        (lambda tmp: (16000, ["a", "b"]), "numbers"),
        (lambda tmp: ("q.wav", 16000), "Unsupported audio input"),
        (lambda tmp: np.ones(16000), "Unsupported audio input"),
        (lambda tmp: None, "No recording"),
        (lambda tmp: b"", "empty"),
        (lambda tmp: str(tmp / "missing.wav"), "not found"),
        (lambda tmp: np.random.default_rng(0).bytes(4000), "Not a sound file"),
        (lambda tmp: b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20), "Not a sound file"),  # a corrupt WAV header
        (lambda tmp: b"%PDF-1.4\n%%EOF\n" * 50, "Not a sound file"),  # an unknown format
    ],
)
def test_bad_input_is_a_clear_message(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        decode(make(tmp_path))


def test_truncated_files_use_the_readable_part(tmp_path: Path, speechlike: np.ndarray) -> None:
    sf.write(tmp_path / "q.wav", speechlike, 16000, subtype="PCM_16")
    data = (tmp_path / "q.wav").read_bytes()
    assert abs(len(decode(data[: len(data) // 2]).samples) - len(speechlike) // 2) < 100
    sf.write(tmp_path / "q.flac", speechlike, 16000)
    data = (tmp_path / "q.flac").read_bytes()
    a = decode(data[: len(data) // 2])
    assert 0 < len(a.samples) < len(speechlike) and "damaged" in a.notice and not a.cut


def test_video_without_sound(tmp_path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=5:duration=0.4", str(tmp_path / "v.mp4"))
    with pytest.raises(InputError, match="no sound track"):
        decode(str(tmp_path / "v.mp4"))


def test_ten_minute_file_is_cut_with_a_notice_and_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    block = np.round(tone_speech(10.0) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:  # 10 minutes, written 10 s at a time
        for _ in range(60):
            f.write(block)
    tracemalloc.start()
    a = decode(str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert a.cut and "600.0 s" in a.notice and "first 15 s" in a.notice
    assert len(a.samples) == 15 * 16000
    assert peak < 20 * 2**20, peak  # a few MB for 15 s, never the whole file (bar: 100 MB)
    big = np.zeros((48000 * 600, 2), np.int16)  # 10 minutes of 48 kHz stereo already in memory (Gradio's form)
    big[:, 0] = 1000
    tracemalloc.start()
    a = decode((48000, big))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert a.cut and len(a.samples) == 15 * 16000 and peak < 20 * 2**20, peak


def test_clipping_and_overdriven_floats_get_notices(speechlike: np.ndarray) -> None:
    clipped = np.clip(speechlike * 8, -1, 1)
    assert "clips" in decode((16000, clipped)).notice
    loud = decode((16000, speechlike * 20000.0))  # float samples at integer scale
    assert "scaled" in loud.notice and np.abs(loud.samples).max() <= 1.0


# ------------------------------------------------------------------------------------------ features


def test_log_mel_frames_are_causal(speechlike: np.ndarray) -> None:
    x = torch.from_numpy(speechlike)
    feats = log_mel(x)  # (F, 40)
    assert feats.shape == (len(speechlike) // 160, 40) and torch.isfinite(feats).all()
    changed = x.clone()
    changed[8000:] = torch.randn(len(x) - 8000)  # everything after 0.5 s
    after = log_mel(changed)
    assert torch.equal(feats[:50], after[:50])  # frame j ends at (j + 1) * 10 ms: frames 0..49 end by 0.5 s
    assert not torch.equal(feats[50], after[50])


# ------------------------------------------------------------------------------------------ the model


def test_audio_model_is_causal() -> None:
    """Changing the recording after time t leaves every step that ended by t unchanged."""
    model = FusionRNN(tiny_config(question_input="audio", audio_channels=8)).eval()
    image = torch.rand(1, 3, 75, 75)
    x = torch.from_numpy(tone_speech(2.0))
    changed = x.clone()
    changed[16000:] = 0.5 * torch.randn(len(x) - 16000)  # after 1.0 s
    with torch.no_grad():
        outs = [model(image, log_mel(s)[None], torch.ones(1, 200, dtype=torch.bool)) for s in (x, changed)]
    steps = int(1.0 / model.cfg.step_seconds)  # 25 steps end by 1.0 s
    a, b = outs
    torch.testing.assert_close(a.hop_attention[:, :steps], b.hop_attention[:, :steps], rtol=0, atol=0)
    torch.testing.assert_close(a.states[:, :steps], b.states[:, :steps], rtol=0, atol=0)
    assert not torch.equal(a.states[:, steps], b.states[:, steps])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_padding_and_batching_do_not_change_spoken_answers(cell: str) -> None:
    """More questions than PACK_ROWS, of many lengths, so the packed steps shrink several times."""
    model = FusionRNN(tiny_config(question_input="audio", audio_channels=8, cell=cell)).eval()
    images = torch.rand(2, 3, 75, 75)
    lengths = [int(n) for n in np.random.default_rng(1).integers(5, 90, 70)]
    lengths[3], lengths[50] = 90, 4
    frames = torch.randn(70, 90, 40) * 3 - 7
    mask = torch.arange(90)[None] < torch.tensor(lengths)[:, None]
    index = torch.arange(70) % 2
    with torch.no_grad():
        batch = model(images, frames, mask, index)
        for i in (0, 3, 17, 50, 69):
            n = lengths[i]
            alone = model(images[index[i] : index[i] + 1], frames[i : i + 1, :n], mask[i : i + 1, :n])
            t = alone.step_mask.shape[1]
            assert t == -(-n // model.cfg.audio_stride) and int(batch.step_mask[i].sum()) == t
            torch.testing.assert_close(batch.logits[i], alone.logits[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(batch.hop_attention[i, :t], alone.hop_attention[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batch.hop_attention.sum(-1), torch.ones(70, batch.hop_attention.shape[1], 2))
    assert (batch.step_attention[~batch.step_mask] == 0).all()


# ------------------------------------------------------------------------------------------ predictor


def test_predict_answers_odd_but_usable_input(predictor: Predictor, scene: np.ndarray, tmp_path: Path) -> None:
    import soxr

    from mmdemo.tasks.sort_of_clevr.speech import synthesize

    voiced = synthesize("What shape is the red object?").samples
    for question in ((8000, soxr.resample(voiced, 16000, 8000)), (192000, soxr.resample(voiced, 16000, 192000)), (16000, np.stack([voiced] * 2, 1))):
        pred = predictor.predict(scene, question)
        assert pred.answered and pred.answer in predictor.cfg.labels and len(pred.step_times) == len(pred.tokens) == len(pred.region_attention)
        assert pred.step_times[-1] <= pred.audio_seconds + predictor.cfg.step_seconds
    noise = (16000, (np.random.default_rng(0).normal(0, 0.1, 32000)).astype(np.float32))
    pred = predictor.predict(scene, noise)  # heard and looked at, but not a question: no answer
    assert not pred.answered and pred.answer == "" and len(pred.step_times) == len(pred.tokens) == 50
    long = predictor.predict(scene, (16000, np.tile(tone_speech(), 20)))  # 30 s
    assert long.truncated and "first 15 s" in long.notice and long.audio_seconds == 15.0
    assert len(long.step_times) == 375 and long.step_times[-1] == pytest.approx(15.0)


def test_predict_refuses_the_wrong_modality(predictor: Predictor, scene: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="listens"):
        predictor.predict(scene, "What shape is the red object?")
    folder = tmp_path / "text-ck"
    save_checkpoint(FusionRNN(tiny_config(text_encoder="learned")), folder)
    with pytest.raises(InputError, match="typed"):
        load_predictor(str(folder), device="cpu").predict(scene, (16000, tone_speech()))
    with pytest.raises(InputError, match="empty"):
        load_predictor(str(folder), device="cpu").predict(scene, None)


def test_spoken_figure_aligns_audio_and_attention(predictor: Predictor, scene: np.ndarray) -> None:
    x = tone_speech()
    pred = predictor.predict(scene, (16000, x))
    words = [("what", 0.0, 0.4), ("<b>shape</b>", 0.4, 1.0)]
    fig = spoken_figure(x, 16000, pred.step_times, np.asarray(pred.region_attention), tuple(pred.grid), words, "a <i>title</i>")
    waveform, spectrogram, attention = fig.data
    assert max(waveform.x) <= 1.5 + 1e-6 and max(spectrogram.x) <= 1.5 + 1e-6
    assert np.asarray(attention.z).shape == (25, len(pred.step_times))
    assert len(fig.layout.shapes) == 2 and "<b>" not in fig.layout.annotations[1].text and "<i>" not in fig.layout.title.text
    assert len(spoken_figure(x, 16000).data) == 2  # the recording alone, before an answer
    assert step_at_time(pred.step_times, 0.0) == 0 and step_at_time(pred.step_times, 0.04) == 0
    assert step_at_time(pred.step_times, 0.05) == 1 and step_at_time(pred.step_times, 99.0) == len(pred.step_times) - 1


def test_bytes_io_is_refused_cleanly(predictor: Predictor, scene: np.ndarray) -> None:
    with pytest.raises(InputError, match="Unsupported audio input"):
        predictor.predict(scene, io.BytesIO(b"RIFF"))


def test_the_heard_head_is_training_only_and_reads_the_right_steps() -> None:
    """heard_classes adds an auxiliary head (colour from the colour word's step on, question kind at the last step):
    the answer and the attention are the same with or without it; its loss looks at exactly those steps."""
    from types import SimpleNamespace

    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr.hearing import HEARD
    from mmdemo.tasks.sort_of_clevr.train import heard_loss

    images, frames = torch.rand(1, 3, 75, 75), torch.randn(2, 60, 40) * 3 - 7
    mask = torch.arange(60)[None] < torch.tensor([60, 40])[:, None]
    outs = []
    for classes in (0, len(HEARD)):
        torch.manual_seed(0)
        model = FusionRNN(tiny_config(question_input="audio", audio_channels=8, heard_classes=classes)).eval()
        with torch.no_grad():
            outs.append(model(images, frames, mask, torch.zeros(2, dtype=torch.long)))
    plain, heard = outs
    assert plain.heard is None and heard.heard.shape == (2, 15, len(HEARD))
    torch.testing.assert_close(plain.logits, heard.logits, rtol=0, atol=0)
    torch.testing.assert_close(plain.hop_attention, heard.hop_attention, rtol=0, atol=0)

    questions = [soc.Question("", "", "nonrelational", "left", "blue"), soc.Question("", "", "relational", "count", "gray")]
    batch = SimpleNamespace(questions=questions, negates=[True, False], colour_steps=lambda: [4, 7])  # "... on the right?"
    right = torch.full((2, 15, len(HEARD)), -20.0)
    right[0, 4:, HEARD.index("blue")] = right[1, 7:10, HEARD.index("gray")] = 20.0  # the colour, from where it was heard on
    right[0, 14, HEARD.index("right")] = right[1, 9, HEARD.index("count")] = 20.0  # the kind and side, at each one's last step
    good = heard_loss(heard._replace(heard=right), batch)
    moved = right.clone()
    moved[0, 4] = right[0, 3]  # the colour one step late
    side = right.clone()
    side[0, 14, HEARD.index("right")], side[0, 14, HEARD.index("left")] = -20.0, 20.0  # the wrong side heard
    # one of the 14 held colour steps unsure (uniform over six colours): log(6) / 14 = 0.128
    assert float(good) < 1e-6 and float(heard_loss(heard._replace(heard=moved), batch)) > 0.12
    assert float(heard_loss(heard._replace(heard=side), batch)) > 0.5
    forgotten = right.clone()
    forgotten[1, 9, HEARD.index("gray")] = -20.0  # the colour no longer named at the last step
    assert float(heard_loss(heard._replace(heard=forgotten), batch)) > 0.12
    padded = right.clone()
    padded[1, 12, HEARD.index("red")] = 20.0  # steps after the end of a question do not count
    assert float(heard_loss(heard._replace(heard=padded), batch)) < 1e-6


def test_spec_augment_masks_a_copy_within_bounds() -> None:
    """SpecAugment (batches.draw_masks / masked): at most two time masks of 80 ms and two bands masks of 6 bands,
    filled with the utterance's mean; the pool's frames are never written; draws are seeded."""
    from mmdemo.tasks.sort_of_clevr.batches import MAX_FREQ_MASK, MAX_TIME_MASK, draw_masks, masked

    frames = np.random.default_rng(0).normal(-6, 2, (120, 40)).astype(np.float16)
    before = frames.copy()
    masks = draw_masks(len(frames), 40, np.random.default_rng(5))
    assert masks == draw_masks(len(frames), 40, np.random.default_rng(5))
    out = masked(frames, masks)
    np.testing.assert_array_equal(frames, before)
    changed_rows = np.nonzero((out != frames.astype(np.float32)).all(axis=1))[0]
    changed_bands = np.nonzero((out != frames.astype(np.float32)).all(axis=0))[0]
    assert len(changed_rows) <= 2 * MAX_TIME_MASK and len(changed_bands) <= 2 * MAX_FREQ_MASK
    assert all(0 <= s and s + w <= len(frames) for s, w in masks.time) and all(0 <= s and s + w <= 40 for s, w in masks.freq)
    fill = float(frames.astype(np.float32).mean())
    for start, width in masks.time:
        assert np.all(out[start : start + width] == np.float32(fill))
    assert masked(frames, None) is frames
