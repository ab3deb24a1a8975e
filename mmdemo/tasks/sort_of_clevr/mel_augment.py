"""Augmentation of cached log-mel frames at each training draw: more rooms, more background talk and more
voices than the synthesized pool holds, for free (no audio is made again).

The tail and the talk work on the mel power (exp of the cached log-mel, less the log's floor), where sounds add:
- **Reverb tail**: late reverberation as an exponential decay of each band's power over the frames before,
  RT60 0.3-1.0 s, the tail's energy 0-12 dB under the direct sound (a common model of late reverb; the
  pool's own rooms are simulated on the waveform). Causal: a frame's tail comes only from earlier frames.
- **Babble from the pool**: 1-4 other training utterances (each scaled to equal power, a window from a random
  start, wrapped) under the question at 3-20 dB SNR, measured as the mean mel power of the question (with its
  tail) over the talkers' together. They are questions too, with colour words of their own, so the model
  learns to follow the louder talker's (the waveform babble of `augment.babble` has no such words). A talker
  is drawn from the whole pool, so once in as many draws as the pool holds it is the question itself.
- **Voice warp** (vocal tract length perturbation, VTLP: Jaitly & Hinton, 2013): the spectrum stretched or
  squeezed along the mel axis by a factor 0.88-1.12 below 85% of the top band, and bent linearly above it so the
  top band stays put: formants and harmonics move together as between a longer and a shorter vocal tract. On
  mel band indices, an approximation of the same warp in hertz; on the log-mel itself. Applied first (it is the question's voice, not
  the room's or the other talkers'). Each frame is warped alone, so it stays causal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from mmdemo.audio import LOG_EPS

RT60_S = (0.3, 1.0)
TAIL_DB = (0.0, 12.0)  # the tail's total energy under the direct sound
TALKERS = (1, 4)
BABBLE_SNR_DB = (3.0, 20.0)
WARP = (0.88, 1.12)  # the voice warp's factor along the mel axis
WARP_KNEE = 0.85  # the share of the bands warped by the factor; above, the warp bends to keep the top band


class Tail(NamedTuple):
    rt60: float  # seconds for the power to fall 60 dB
    under_db: float  # the tail's total energy under the direct sound


class Talk(NamedTuple):
    ids: list[int]  # pool utterances mixed under the question
    starts: list[int]  # the frame each one's window starts at (wrapping)
    snr_db: float  # the question's power over the talkers' together


class MelDraw(NamedTuple):
    """What one utterance gets at one draw (None: not that effect)."""

    tail: Tail | None
    talk: Talk | None
    warp: float | None = None  # the voice warp's factor


def draw(lengths: np.ndarray, reverb: float, babble: float, rng: np.random.Generator, warp: float = 0.0) -> MelDraw:
    """One utterance's draw: a reverb tail with probability `reverb`, talk from the pool with `babble`, a voice
    warp with `warp` (drawn last, and only when on: without it the stream is drawn as before).
    lengths: every pool utterance's frame count (a talker is one of them; its start is drawn within it)."""
    pool_size = len(lengths)
    tail = talk = factor = None
    if reverb > 0 and rng.random() < reverb:
        tail = Tail(float(rng.uniform(*RT60_S)), float(rng.uniform(*TAIL_DB)))
    if babble > 0 and rng.random() < babble:
        ids = [int(i) for i in rng.integers(pool_size, size=int(rng.integers(TALKERS[0], TALKERS[1] + 1)))]
        talk = Talk(ids, [int(rng.integers(max(1, int(lengths[i])))) for i in ids], float(rng.uniform(*BABBLE_SNR_DB)))
    if warp > 0 and rng.random() < warp:
        factor = float(rng.uniform(*WARP))
    return MelDraw(tail, talk, factor)


def power(log_mel: np.ndarray) -> np.ndarray:
    """(L, M) log mel -> mel power (float32, >= 0)."""
    return np.maximum(np.exp(log_mel.astype(np.float32)) - LOG_EPS, 0.0)


def to_log(p: np.ndarray) -> np.ndarray:
    return np.log(p + LOG_EPS).astype(np.float32)


def warp_sources(bands: int, factor: float) -> np.ndarray:
    """For each output band, the (fractional) input band it reads: output m = factor x input below the knee
    (m0 = knee x top x min(factor, 1)), and a straight line from there to the top band, which stays."""
    top = bands - 1
    m = np.arange(bands, dtype=np.float64)
    m0 = WARP_KNEE * top * min(factor, 1.0)
    s0 = m0 / factor
    return np.where(m <= m0, m / factor, s0 + (m - m0) * (top - s0) / (top - m0))


def warp_voice(log_mel: np.ndarray, factor: float) -> np.ndarray:
    """log_mel (L, M) with every frame's spectrum warped by factor along the mel axis (linear interpolation
    of the log-mel between the two nearest input bands); float32."""
    x = log_mel.astype(np.float32)
    src = warp_sources(x.shape[1], factor)
    lo = np.clip(np.floor(src).astype(np.int64), 0, x.shape[1] - 1)
    hi = np.minimum(lo + 1, x.shape[1] - 1)
    w = (src - lo).astype(np.float32)
    return x[:, lo] * (1.0 - w) + x[:, hi] * w


def add_tail(p: np.ndarray, tail: Tail, hop_s: float) -> np.ndarray:
    """p (L, M) mel power plus its late reverb: frame t gets sum_k>=1 c a^k p[t-k], a = the power's decay per
    frame, c such that the whole tail of one frame holds 10^(-under_db/10) of its energy."""
    from scipy.signal import lfilter  # here: the app imports this module's callers, and needs no scipy.signal

    a = 10.0 ** (-6.0 * hop_s / tail.rt60)
    c = 10.0 ** (-tail.under_db / 10.0) * (1.0 - a) / a
    return p + lfilter([0.0, c * a], [1.0, -a], p, axis=0).astype(np.float32)


def add_talk(p: np.ndarray, others: list[np.ndarray], starts: list[int], snr_db: float) -> np.ndarray:
    """p (L, M) mel power plus the talkers (each (L_i, M) mel power, read from its start, wrapped) at snr_db."""
    length = len(p)
    mix = np.zeros_like(p)
    for other, start in zip(others, starts):
        if len(other) == 0:
            continue
        window = np.take(other, (start + np.arange(length)) % len(other), axis=0)
        mix += window / max(float(window.mean()), 1e-12)
    level = float(mix.mean())
    if level <= 0.0 or length == 0:
        return p
    return p + mix * (float(p.mean()) / (level * 10.0 ** (snr_db / 10.0)))


def apply(log_mel: np.ndarray, d: MelDraw | None, frames_of: Callable[[int], np.ndarray] | None, hop_s: float) -> np.ndarray:
    """log_mel (L, M) after the draw: a new float32 array, or log_mel itself when nothing was drawn (it is never
    written). frames_of(i): pool utterance i's log-mel frames (needed only for talk)."""
    if d is None:
        return log_mel
    if d.warp is not None:
        log_mel = warp_voice(log_mel, d.warp)
    if d.tail is None and d.talk is None:
        return log_mel
    p = power(log_mel)
    if d.tail is not None:
        p = add_tail(p, d.tail, hop_s)
    if d.talk is not None:
        p = add_talk(p, [power(frames_of(i)) for i in d.talk.ids], d.talk.starts, d.talk.snr_db)
    return to_log(p)
