"""The rooms and microphones people record in, applied to clean synthesized speech (training and evaluation).

Every effect is drawn ahead into an Utterance (spoken.py) and applied here from its fields and seed:

- speed perturbation (`warp`: the samples played faster or slower, pitch and formants with them, as Kaldi's
  speed perturbation) and a pitch shift in semitones (audiomentations' PitchShift);
- a simulated room: a shoebox room's impulse response by the image-source method (pyroomacoustics), the
  absorption set from the drawn RT60 by Sabine's formula, source and microphone at random places;
- a band limit: "phone" (8 kHz round trip, 300-3,400 Hz) or "laptop" (a small microphone: 200 Hz - 6 kHz,
  a presence bump), by Butterworth filters (scipy);
- babble: 2-6 other talkers (eSpeak NG training voices, for every split) saying neutral sentences (BABBLE_SENTENCES:
  no colour, shape or position words), at the drawn SNR;
- white, pink or brown noise at the drawn SNR; gain, clipped at full scale (clipping is part of the data).
SpecAugment-style time and frequency masks act on features at training time (batches.py), not here.
"""

from __future__ import annotations

import numpy as np

from mmdemo.tasks.sort_of_clevr import speech

BABBLE_SENTENCES = (
    "I think we should leave a little earlier tomorrow morning.",
    "Did you remember to bring the tickets for the train?",
    "The meeting was moved to Thursday after lunch.",
    "She said the bakery on the corner closes at six.",
    "We could walk there if the weather stays nice.",
    "My brother is coming to visit next weekend.",
    "Can you pass me the salt and the pepper please?",
    "The library has a new section for old maps.",
    "He played the piano for nearly an hour.",
    "Let me know when you are ready to go.",
    "The coffee here is much better than it used to be.",
    "They are building a bridge across the river.",
    "I lost my keys again this afternoon.",
    "Our flight lands just before midnight.",
    "The children were laughing in the garden.",
    "Please turn the volume down a bit.",
    "That film was longer than I expected.",
    "We need more milk and a loaf of bread.",
    "The report is due by the end of the month.",
    "Thanks for helping me move the sofa.",
    "It rained all day on Sunday.",
    "Could you call me back in ten minutes?",
    "The museum is free on the first Monday.",
    "I usually read before going to sleep.",
)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def at_snr(signal_level: float, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`noise` scaled so that signal_level / its RMS is snr_db."""
    return noise * (signal_level / max(rms(noise), 1e-9) * 10 ** (-snr_db / 20))


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2) noise, n samples."""
    from scipy import fft

    if kind == "white":
        return rng.standard_normal(n).astype(np.float32)
    size = fft.next_fast_len(n, real=True)  # an awkward length would make the FFT many times slower
    spectrum = fft.rfft(rng.standard_normal(size).astype(np.float32))
    freqs = np.maximum(fft.rfftfreq(size), 1.0 / size)
    spectrum /= np.sqrt(freqs) if kind == "pink" else freqs
    return fft.irfft(spectrum, size)[:n].astype(np.float32)


def warp(x: np.ndarray, factor: float, sr: int = speech.SAMPLE_RATE) -> np.ndarray:
    """Play x `factor` times faster (shorter and higher for factor > 1)."""
    import soxr

    if factor == 1.0:
        return x
    return soxr.resample(x, sr * factor, sr).astype(np.float32)


def pitch_shift(x: np.ndarray, semitones: float, sr: int = speech.SAMPLE_RATE) -> np.ndarray:
    from audiomentations import PitchShift

    if semitones == 0.0 or len(x) < 2048:
        return x
    shift = PitchShift(min_semitones=semitones, max_semitones=semitones, p=1.0)
    return shift(samples=x, sample_rate=sr).astype(np.float32)


def room_response(rt60: float, rng: np.random.Generator, sr: int = speech.SAMPLE_RATE) -> np.ndarray:
    """The impulse response from a talker to a microphone in a shoebox room with this RT60 (s)."""
    import pyroomacoustics as pra

    dim = np.array([rng.uniform(3.0, 10.0), rng.uniform(2.5, 8.0), rng.uniform(2.4, 3.6)])
    absorption, max_order = pra.inverse_sabine(rt60, dim)
    room = pra.ShoeBox(dim, fs=sr, materials=pra.Material(absorption), max_order=min(int(max_order), 40))
    source = dim * rng.uniform(0.15, 0.85, 3)
    mic = dim * rng.uniform(0.15, 0.85, 3)
    if np.linalg.norm(source - mic) < 0.5:  # a talker at least half a metre away
        mic = dim - source
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    ir = np.asarray(room.rir[0][0], dtype=np.float32)
    return ir / max(float(np.abs(ir).max()), 1e-9)


def reverberate(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    wet = fftconvolve(x, room_response(rt60, rng))[: len(x)].astype(np.float32)
    return wet * (rms(x) / max(rms(wet), 1e-9))


def band_limit(x: np.ndarray, band: str, sr: int = speech.SAMPLE_RATE) -> np.ndarray:
    """A telephone ("phone") or a small laptop microphone ("laptop")."""
    import soxr
    from scipy.signal import butter, sosfilt

    if band == "phone":
        x = soxr.resample(soxr.resample(x, sr, 8000), 8000, sr)[: len(x)]
        return sosfilt(butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos"), x).astype(np.float32)
    if band == "laptop":
        y = sosfilt(butter(2, [200, 6000], btype="bandpass", fs=sr, output="sos"), x)
        presence = sosfilt(butter(2, [2000, 4500], btype="bandpass", fs=sr, output="sos"), x)
        return (y + 0.5 * presence).astype(np.float32)
    if band:
        raise ValueError(f"unknown band {band!r}")
    return x


def babble(n: int, talkers: int, voice_list: list[str], rng: np.random.Generator) -> np.ndarray:
    """`talkers` eSpeak voices saying neutral sentences at once, each from a random offset, n samples."""
    out = np.zeros(n, np.float32)
    for _ in range(talkers):
        text = " ".join(BABBLE_SENTENCES[int(i)] for i in rng.choice(len(BABBLE_SENTENCES), 2, replace=False))
        voice = voice_list[int(rng.integers(len(voice_list)))]
        s = speech.synthesize(text, voice, int(rng.integers(140, 220)), int(rng.integers(20, 80))).samples
        start = int(rng.integers(0, max(1, len(s) - n))) if len(s) > n else 0
        part = np.resize(s[start:], n) if len(s) else np.zeros(n, np.float32)  # wraps a short one around
        out += part / max(rms(part), 1e-9)
    return out
