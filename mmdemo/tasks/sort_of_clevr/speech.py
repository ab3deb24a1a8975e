"""Speech synthesis with eSpeak NG from the espeakng-loader wheel (ctypes, no system install, no network).

synthesize(text) -> Speech(sample_rate, samples, words): 16 kHz float32 samples and, for every word, when
it starts and ends in seconds (from eSpeak's word events; a word ends where the next one starts, the last
one where the speech ends). eSpeak keeps global state, so every call holds one lock.
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

SAMPLE_RATE = 16000  # what synthesize returns (eSpeak itself speaks at 22,050 Hz)
MAX_TEXT_CHARS = 400  # longer text is cut before speaking: a question, not a book
DEFAULT_VOICE = "en-us"
DEFAULT_RATE = 175  # words per minute (eSpeak's default)
DEFAULT_PITCH = 50  # 0..100 (eSpeak's default)
# English dialects in the wheel's voice data ("en-Shaw" is the Shavian alphabet, not a dialect: left out).
DIALECTS = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END, _EVENT_MSG_TERMINATED = 0, 1, 5, 6
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7
_BUFFER_MS = 500  # audio per callback (eSpeak's default, 60 ms, means many more Python calls)


class _Event(ctypes.Structure):
    _fields_ = [  # espeak_EVENT
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position of the word
        ("length", ctypes.c_int),  # word length in characters
        ("audio_position", ctypes.c_int),  # ms into the speech
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class Word(NamedTuple):
    text: str  # the word as written in the input
    start: float  # seconds
    end: float  # seconds: where the next word starts (pauses count to the word before them)


class Speech(NamedTuple):
    sample_rate: int
    samples: np.ndarray  # (N,) float32 in [-1, 1]
    words: list[Word]


class SpeechUnavailable(RuntimeError):
    """No synthesizer on this machine; the message says why (shown where "speak this question" would be)."""


class _Engine:
    """One eSpeak NG instance for the process (its state is global in the C library)."""

    def __init__(self) -> None:
        import espeakng_loader

        data = Path(espeakng_loader.get_data_path())
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self.native_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(data.parent).encode(), _INITIALIZE_DONT_EXIT)
        if self.native_rate <= 0:
            raise SpeechUnavailable(f"eSpeak NG did not start (code {self.native_rate})")
        self.variants = tuple(sorted(p.name for p in (data / "voices" / "!v").iterdir() if " " not in p.name))
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int]] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: the C side holds a pointer to it
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), count: int, events: ctypes.POINTER(_Event)) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            self._events.append((e.type, e.text_position, e.length, e.audio_position))
            i += 1
        return 0  # 0 = go on

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, word_gap: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"unknown voice {voice!r}")
            for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range), (_PARAM_VOLUME, 100), (_PARAM_WORDGAP, word_gap)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data, len(data))
            err = self.lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"eSpeak NG could not speak (code {err})")
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
            return samples, self._events


@lru_cache(maxsize=1)
def _engine() -> _Engine | str:
    """The engine, or the reason there is none (cached: the library is looked for once)."""
    try:
        return _Engine()
    except ImportError:
        return "speech synthesis needs the espeakng-loader package (pip install espeakng-loader)"
    except (OSError, RuntimeError, AttributeError) as e:
        return f"the eSpeak NG library in espeakng-loader did not load: {str(e)[:160]}"


def available() -> tuple[bool, str]:
    """(True, "") when synthesize works here, else (False, why)."""
    engine = _engine()
    return (True, "") if isinstance(engine, _Engine) else (False, engine)


def variants() -> tuple[str, ...]:
    """Voice variants in the wheel's data (append to a dialect: "en-us+f3")."""
    engine = _engine()
    return engine.variants if isinstance(engine, _Engine) else ()


def voice_name(dialect: str, variant: str = "") -> str:
    """"en-us" + "f3" -> "en-us+f3"; checks both exist (eSpeak silently ignores an unknown variant)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; one of {DIALECTS}")
    if variant and variant not in variants():
        raise ValueError(f"unknown voice variant {variant!r}")
    return f"{dialect}+{variant}" if variant else dialect


def word_boundaries(text: str, events: list[tuple[int, int, int, int]], duration: float) -> list[Word]:
    """Words with start and end times from eSpeak's events (type, 1-based char position, length, ms)."""
    starts = [(pos, length, ms / 1000.0) for kind, pos, length, ms in events if kind == _EVENT_WORD]
    ends = sorted(ms / 1000.0 for kind, _, _, ms in events if kind in (_EVENT_END, _EVENT_MSG_TERMINATED))
    words = []
    for i, (pos, length, start) in enumerate(starts):
        nxt = [s for _, _, s in starts[i + 1 :] if s > start]
        after = [e for e in ends if e > start]
        end = min([*nxt[:1], *after[:1]], default=duration)
        words.append(Word(text[pos - 1 : pos - 1 + length], round(start, 4), round(min(end, duration), 4)))
    return words


def synthesize(text: str, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE, pitch: int = DEFAULT_PITCH, pitch_range: int = 50, word_gap: int = 0) -> Speech:
    """Speak `text` -> Speech(16000, samples (N,) float32, words); word_gap: extra pause between words in
    units of 10 ms. Raises SpeechUnavailable without a
    synthesizer, ValueError for an unknown voice or nothing to say."""
    import soxr

    engine = _engine()
    if not isinstance(engine, _Engine):
        raise SpeechUnavailable(engine)
    text = " ".join(str(text).split())[:MAX_TEXT_CHARS]
    if not text:
        raise ValueError("nothing to say: the text is empty")
    raw, events = engine.speak(text, voice, int(np.clip(rate, 80, 450)), int(np.clip(pitch, 0, 100)), int(np.clip(pitch_range, 0, 100)), int(np.clip(word_gap, 0, 50)))
    samples = soxr.resample(raw.astype(np.float32) / 32768.0, engine.native_rate, SAMPLE_RATE).astype(np.float32)  # (N,)
    return Speech(SAMPLE_RATE, samples, word_boundaries(text, events, len(samples) / SAMPLE_RATE))
