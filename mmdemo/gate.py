"""Is there a question in this sound? A voice-activity gate in front of the spoken model.

The spoken model answers whatever it is given, so a tone, hum, music, clapping or silence would get an answer
too. listen() runs Silero VAD (the MIT ONNX model that ships inside the `silero-vad` wheel; onnxruntime, one
thread) over the recording in 32 ms chunks and counts the chunks it calls speech: less than
`min_speech_s` of speech is "I didn't hear a question". The threshold is chosen on validation sounds
(python -m mmdemo.tasks.sort_of_clevr.nonspeech fit) and kept in checkpoints/sort-of-clevr/spoken/gate.json.

Input: float32 mono at 16 kHz, as mmdemo.audio.decode gives it (decoding and resampling are the caller's
job). Nothing heavy is imported here until the first listen(): onnxruntime, torch and silero_vad load then.
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mmdemo.limits import MAX_AUDIO_SECONDS

SAMPLE_RATE = 16000  # the only rate the gate hears
CHUNK = 512  # samples per Silero VAD decision at 16 kHz
CHUNK_S = CHUNK / SAMPLE_RATE  # 0.032 s
GATE_FILE = "gate.json"  # in a spoken checkpoint folder
TARGET_LEVEL = 0.5  # the level (-6 dBFS) the loud end of a recording is brought to before Silero hears it
LEVEL_QUANTILE = 0.999  # ... measured as this quantile of |x|: a click shorter than ~0.1% of the recording is ignored
MAX_GAIN = 100.0  # at most +40 dB: near-silence stays quiet
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "checkpoints" / "sort-of-clevr" / "spoken" / GATE_FILE
NOT_HEARD = "I didn't hear a question."  # what the app says when listen() refuses


@dataclass(frozen=True)
class GateConfig:
    speech_threshold: float = 0.5  # a chunk is speech when Silero's probability for it is at least this
    min_speech_s: float = 0.992  # a question needs at least this much speech (s); fitted on validation (gate.json)

    def min_chunks(self) -> int:
        """How many speech chunks a question needs (min_speech_s in whole 32 ms chunks, rounded up)."""
        return max(0, math.ceil(self.min_speech_s / CHUNK_S - 1e-6))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateConfig:
        """From a dict with at least the config's fields (other keys, such as how it was chosen, are ignored)."""
        names = {f.name for f in fields(cls)}
        missing = names - set(d)
        if missing:
            raise ValueError(f"gate config lacks {sorted(missing)}")
        return cls(**{k: float(d[k]) for k in names})

    @classmethod
    def from_json(cls, path: str | Path = DEFAULT_PATH) -> GateConfig:
        """Read gate.json (written by `nonspeech fit`)."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_json(self, path: str | Path = DEFAULT_PATH, chosen: dict[str, Any] | None = None) -> Path:
        """Write the config, and how it was chosen, to a small json file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**asdict(self), "chosen": chosen or {}}, indent=2) + "\n")
        return path


@dataclass(frozen=True)
class Heard:
    speech_s: float  # seconds of 32 ms chunks Silero calls speech
    speech_fraction: float  # their share of the recording's chunks (0 for empty input)
    max_prob: float  # the largest chunk probability
    question: bool  # speech_s reached min_speech_s: answer it; else say NOT_HEARD


@lru_cache(maxsize=1)
def load_config(path: str = str(DEFAULT_PATH)) -> GateConfig:
    """The shipped gate config (gate.json), or the defaults above when the file is missing."""
    return GateConfig.from_json(path) if Path(path).is_file() else GateConfig()


@lru_cache(maxsize=1)
def _model() -> tuple[Any, threading.Lock]:
    """Silero VAD's ONNX session wrapper (once per process) and the lock its calls share (it keeps state)."""
    import torch

    threads = torch.get_num_threads()
    try:  # importing silero_vad calls torch.set_num_threads(1) for the whole process: put it back
        from silero_vad import load_silero_vad

        with warnings.catch_warnings():  # its loader uses importlib.resources.path (deprecated; harmless)
            warnings.simplefilter("ignore", DeprecationWarning)
            model = load_silero_vad(onnx=True)
    finally:
        torch.set_num_threads(threads)
    return model, threading.Lock()


def _as_mono(samples: Any) -> np.ndarray:
    """Anything array-like -> finite float32 (N,) in [-1, 1], at most MAX_AUDIO_SECONDS; empty when it is not sound."""
    from mmdemo.audio import to_float  # integer PCM scaling and NaN/inf -> 0, as decode does it
    from mmdemo.errors import InputError

    try:
        x = np.asarray(samples)
        if x.ndim == 2:
            x = x.mean(axis=int(np.argmin(x.shape))) if x.size else x.reshape(-1)  # (N, C) or (C, N): mix down
        x = to_float(x.reshape(-1)[: int(MAX_AUDIO_SECONDS * SAMPLE_RATE)])
    except (InputError, TypeError, ValueError):
        return np.zeros(0, np.float32)
    x = np.nan_to_num(x.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)  # mean of huge ints can overflow
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1.0:  # float input at integer scale: back to [-1, 1], as decode does
        x = x / peak
    return np.ascontiguousarray(x, dtype=np.float32)


def normalise(x: np.ndarray) -> np.ndarray:
    """Bring the recording's loud end (LEVEL_QUANTILE of |x|) to TARGET_LEVEL, by at most MAX_GAIN, clipped at
    full scale. Silero's probabilities fall with the level (a question at -30 dBFS is missed far more often
    than at -6) and the spoken model is trained on -30 to +6 dB, so the gate hears every recording at one level."""
    k = int(LEVEL_QUANTILE * (x.size - 1))
    level = float(np.partition(np.abs(x), k)[k]) if x.size else 0.0
    if level <= 0.0:
        return x
    return np.clip(x * min(TARGET_LEVEL / level, MAX_GAIN), -1.0, 1.0).astype(np.float32)


def speech_probs(samples: Any) -> np.ndarray:
    """(N,) 16 kHz samples -> (ceil(N / 512),) Silero speech probabilities per 32 ms chunk; empty for empty or
    all-zero input (the model is not run)."""
    x = _as_mono(samples)
    if not x.size or not np.any(x):
        return np.zeros(0, np.float32)
    import torch

    x = normalise(x)
    if x.size < CHUNK:  # the wrapper refuses less than one chunk
        x = np.pad(x, (0, CHUNK - x.size))
    model, lock = _model()
    with lock, torch.inference_mode():
        if hasattr(model, "reset_states"):
            model.reset_states()
        probs = model.audio_forward(torch.from_numpy(x), SAMPLE_RATE)  # (1, chunks)
    return probs.numpy().reshape(-1).astype(np.float32)


def decide(probs: np.ndarray, cfg: GateConfig) -> Heard:
    """Chunk probabilities -> Heard under cfg (split from listen so fitting runs the model once per clip)."""
    if not probs.size:
        return Heard(0.0, 0.0, 0.0, False)
    n = int(np.count_nonzero(probs >= cfg.speech_threshold))
    return Heard(round(n * CHUNK_S, 3), round(n / probs.size, 4), round(float(probs.max()), 4), n > 0 and n >= cfg.min_chunks())


def listen(samples: np.ndarray, cfg: GateConfig | None = None) -> Heard:
    """Float32 mono 16 kHz samples -> Heard: is there enough speech for a question? Never raises on odd
    samples (NaN/inf count as 0, integers are scaled, very short input is padded, empty input is no question)."""
    return decide(speech_probs(samples), cfg or load_config())
