"""Spoken questions: any sound input -> 16 kHz mono float32 (bounded work and memory) -> log-mel frames.

decode() accepts a path, bytes, or (sample_rate, samples) as Gradio's numpy audio gives it (int16, int32,
uint8 or float; mono, (N, C) or (C, N)). WAV, FLAC, OGG (Vorbis, Opus) and MP3 go through libsndfile
(soundfile); anything else (WebM, M4A/MP4, AAC, ...) through the ffmpeg binary that ships in the
imageio-ffmpeg wheel, when it is installed. At most `max_seconds` is ever decoded: a longer recording is cut
with a notice, never read whole. Problems a person can fix raise InputError with a message to show them.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from mmdemo.errors import InputError
from mmdemo.limits import MAX_AUDIO_SECONDS

SAMPLE_RATE = 16000  # what the model hears
MIN_AUDIO_SECONDS = 0.1  # shorter is refused: less than a syllable
MIN_SAMPLE_RATE = 4000  # telephone audio is 8 kHz; below 4 kHz speech is unintelligible
MAX_SAMPLE_RATE = 384000
MAX_CHANNELS = 64  # channels are mixed down block by block, so this bounds only nonsense headers
SILENCE_PEAK = 1e-4  # peak below -80 dBFS: nothing was recorded
CLIP_LEVEL, CLIP_SHARE = 0.999, 0.01  # over 1% of samples at full scale: the recording clips (a notice)
BLOCK_FRAMES = 4096  # frames per block when reading a file (a damaged file keeps the blocks before the damage)
FFMPEG_TIMEOUT_S = 30
LOG_EPS = 1e-6  # floor under the mel power before the log
# Containers ffmpeg may open (its demuxer names): what browsers record, phones save and video files hold.
# Playlists, concat scripts, image sequences and network protocols are not on the list.
FFMPEG_FORMATS = "matroska,webm,mov,mp4,m4a,3gp,3g2,mj2,ogg,mp3,wav,flac,aac,aiff,caf,amr,amrnb,amrwb,avi,asf"
SOUNDFILE_FORMATS = "WAV, FLAC, OGG and MP3"


class Audio(NamedTuple):
    samples: np.ndarray  # (N,) float32, mono
    sample_rate: int  # what decode was asked for (SAMPLE_RATE)
    source_rate: int  # the input's sample rate
    notice: str  # "" or something the person should know (cut, clipping, rescaled); safe to show
    cut: bool  # the recording was longer than max_seconds and only its start was read


def to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1]; floats pass (NaN/inf become 0)."""
    kind = samples.dtype.kind
    if kind == "i":
        return samples.astype(np.float32) / float(2 ** (8 * samples.dtype.itemsize - 1))
    if kind == "u":
        half = float(2 ** (8 * samples.dtype.itemsize - 1))
        return (samples.astype(np.float32) - half) / half
    if kind == "f":
        return np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if kind == "b":
        return samples.astype(np.float32)
    raise InputError(f"Audio samples must be numbers, got {samples.dtype}.")


def _from_array(sample_rate: Any, samples: Any, max_seconds: float) -> tuple[np.ndarray, int, str, bool]:
    """(sample_rate, samples) -> (mono float32 (N,), rate, notice, cut), cut to max_seconds."""
    try:
        rate = int(sample_rate)
    except (TypeError, ValueError):
        raise InputError("The audio's sample rate must be a number.") from None
    _check_rate(rate)
    arr = np.asarray(samples)
    if arr.ndim == 2 and arr.shape[0] <= MAX_CHANNELS < arr.shape[1]:
        arr = arr.T  # (C, N) -> (N, C)
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and not 1 <= arr.shape[1] <= MAX_CHANNELS):
        raise InputError(f"Audio samples must be (N,) or (N, channels), got shape {arr.shape}.")
    keep = int(max_seconds * rate)
    notice = ""
    if arr.shape[0] > keep:
        notice = _cut_notice(arr.shape[0] / rate, max_seconds)
        arr = arr[:keep]  # a view: the rest is never converted
    mono = to_float(arr) if arr.ndim == 1 else to_float(arr).mean(axis=1)
    return mono.astype(np.float32, copy=False), rate, notice, bool(notice)


def _cut_notice(seconds: float | None, max_seconds: float) -> str:
    long = f"The recording is {seconds:.1f} s long; " if seconds else "The recording is long; "
    return long + f"the model listened to the first {max_seconds:g} s."


def _check_rate(rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InputError(f"Unsupported sample rate {rate} Hz: use {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz.")


def _read_soundfile(source: str | io.BytesIO, max_seconds: float) -> tuple[np.ndarray, int, str, bool] | None:
    """Through libsndfile, block by block (mono-mixed as it goes); None when it is not a format it reads."""
    import soundfile as sf

    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError):
        return None
    finally:
        if isinstance(source, io.BytesIO):
            source.seek(0)
    _check_rate(int(info.samplerate))
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise InputError(f"The file says it has {info.channels} channels; at most {MAX_CHANNELS} are read.")
    keep = int(max_seconds * info.samplerate)
    seconds = info.frames / info.samplerate if info.frames > 0 else None
    cut = info.frames > keep
    notice = _cut_notice(seconds, max_seconds) if cut else ""
    parts, have = [], 0
    try:
        with sf.SoundFile(source) as f:
            while have < keep:
                block = f.read(min(BLOCK_FRAMES, keep - have), dtype="float32", always_2d=True)  # (n, C)
                if not len(block):
                    break
                parts.append(block.mean(axis=1))
                have += len(block)
            if have >= keep and not cut and f.read(1, always_2d=True).size:  # frames unknown (some MP3s)
                cut, notice = True, _cut_notice(None, max_seconds)
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as e:
        if not parts:
            raise InputError(f"The sound file is damaged: {_short(e)}") from None
        notice = (notice + " " if notice else "") + "The end of the file is damaged; the readable part was used."
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return np.nan_to_num(samples), int(info.samplerate), notice, cut


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:120]


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str | None:
    """The ffmpeg binary from the imageio-ffmpeg wheel, or None."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError, OSError):
        return None


def _read_ffmpeg(path: str, max_seconds: float, rate: int) -> tuple[np.ndarray, int, str, bool]:
    """Any container ffmpeg opens (FFMPEG_FORMATS): its first audio stream, mono at `rate`, at most max_seconds."""
    exe = ffmpeg_exe()
    if exe is None:
        raise InputError(f"This format needs ffmpeg (pip install imageio-ffmpeg); {SOUNDFILE_FORMATS} work without it.")
    cmd = [
        exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file",
        "-format_whitelist", FFMPEG_FORMATS, "-i", "file:" + os.path.abspath(path),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(rate),
        "-t", f"{max_seconds + 0.05:.3f}", "-f", "s16le", "-",
    ]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise InputError("Decoding the file took too long.") from None
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != 0 or not r.stdout:
        if "matches no streams" in err:
            raise InputError("The file has no sound track.")
        raise InputError(f"Not a sound file this demo can read ({SOUNDFILE_FORMATS}, WebM, M4A/MP4, AAC, ...).")
    samples = np.frombuffer(r.stdout[: len(r.stdout) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    keep = int(max_seconds * rate)
    cut = len(samples) > keep
    return samples[:keep], rate, _cut_notice(None, max_seconds) if cut else "", cut


def _from_file(source: str | Path | bytes, max_seconds: float, rate: int) -> tuple[np.ndarray, int, str, bool]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InputError("The sound file is empty (0 bytes).")
        read = _read_soundfile(io.BytesIO(data), max_seconds)
        if read is not None:
            return read
        with tempfile.NamedTemporaryFile(suffix=".bin") as tmp:  # ffmpeg needs a seekable file (MP4 keeps its index last)
            tmp.write(data)
            tmp.flush()
            return _read_ffmpeg(tmp.name, max_seconds, rate)
    path = Path(source)
    if not path.is_file():
        raise InputError(f"Sound file not found: {path.name or path}")
    if path.stat().st_size == 0:
        raise InputError("The sound file is empty (0 bytes).")
    read = _read_soundfile(str(path), max_seconds)
    return read if read is not None else _read_ffmpeg(str(path), max_seconds, rate)


def decode(question: Any, max_seconds: float = MAX_AUDIO_SECONDS, sample_rate: int = SAMPLE_RATE) -> Audio:
    """A path, bytes or (sample_rate, samples) -> Audio, mono at sample_rate; raises InputError for bad input.
    An Audio decoded at this sample_rate and within max_seconds comes back as it is (decode once, use twice)."""
    import soxr

    if isinstance(question, Audio):
        if question.sample_rate == sample_rate and len(question.samples) <= max_seconds * sample_rate:
            return question
        question = (question.sample_rate, question.samples)
    if question is None:
        raise InputError("No recording given: record or upload a spoken question.")
    if isinstance(question, (tuple, list)) and len(question) == 2 and not isinstance(question[0], (str, bytes)):
        samples, rate, notice, cut = _from_array(question[0], question[1], max_seconds)
    elif isinstance(question, (str, Path, bytes, bytearray, memoryview)):
        samples, rate, notice, cut = _from_file(question, max_seconds, sample_rate)
    else:
        raise InputError(f"Unsupported audio input: {type(question).__name__}; give a file or (sample_rate, samples).")
    if len(samples) < MIN_AUDIO_SECONDS * rate:
        what = "has no samples" if not len(samples) else f"is {1000 * len(samples) / rate:.0f} ms long"
        raise InputError(f"The recording {what}; say the question (at least {MIN_AUDIO_SECONDS:g} s).")
    peak = float(np.abs(samples).max())
    if peak < SILENCE_PEAK:
        raise InputError("The recording is silent: check the microphone and ask again.")
    notes = [notice] if notice else []
    if peak > 1.0:  # float input at integer scale, or an overdriven mix: bring it back to [-1, 1]
        samples = samples / peak
        notes.append("The samples went beyond full scale and were scaled down.")
    elif float(np.mean(np.abs(samples) >= CLIP_LEVEL)) > CLIP_SHARE:
        notes.append("The recording clips (too loud); the answer may suffer.")
    if rate != sample_rate:
        samples = soxr.resample(samples, rate, sample_rate)  # linear in the (already capped) length
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), sample_rate, rate, " ".join(notes), cut)


# ------------------------------------------------------------------------------------------ features


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) Slaney mel filterbank from librosa (computed once per setting)."""
    import librosa

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=20.0, fmax=sample_rate / 2)
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


@lru_cache(maxsize=4)
def _window(length: int) -> torch.Tensor:
    return torch.hann_window(length)


def log_mel(samples: np.ndarray | torch.Tensor, sample_rate: int = SAMPLE_RATE, n_mels: int = 40, hop_ms: int = 10, window_ms: int = 25) -> torch.Tensor:
    """(N,) or (B, N) samples -> (F, n_mels) or (B, F, n_mels) log mel power, F = N // hop.

    Causal framing: frame j ends at sample (j + 1) * hop (the window is left-padded with zeros), so frame j
    depends on nothing after (j + 1) * hop_ms ms.
    """
    x = torch.as_tensor(samples, dtype=torch.float32)
    single = x.dim() == 1
    x = x[None] if single else x  # (B, N)
    hop, win = sample_rate * hop_ms // 1000, sample_rate * window_ms // 1000
    frames = x.shape[1] // hop
    fb = mel_filterbank(sample_rate, win, n_mels)  # (M, win // 2 + 1)
    if frames == 0:
        out = x.new_zeros(x.shape[0], 0, n_mels)
        return out[0] if single else out
    x = torch.nn.functional.pad(x[:, : frames * hop], (win - hop, 0))  # (B, frames * hop + win - hop)
    spec = torch.stft(x, n_fft=win, hop_length=hop, window=_window(win), center=False, return_complex=True)  # (B, K, F)
    mel = torch.matmul(fb, spec.abs().square())  # (B, M, F)
    out = torch.log(mel + LOG_EPS).transpose(1, 2).contiguous()  # (B, F, M)
    return out[0] if single else out


def step_times(num_steps: int, step_seconds: float) -> list[float]:
    """When each audio step ends (s): step i has heard the recording up to (i + 1) * step_seconds."""
    return [round((i + 1) * step_seconds, 4) for i in range(num_steps)]


def time_to_step(seconds: float, step_seconds: float) -> int:
    """The first step that has heard the recording up to `seconds` (its end is at or after it)."""
    return max(0, math.ceil(seconds / step_seconds - 1e-6) - 1)
