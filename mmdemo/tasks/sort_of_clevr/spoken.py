"""Spoken Sort-of-CLEVR questions: eSpeak NG voices the generator's questions, features are cached on disk.

    python -m mmdemo.tasks.sort_of_clevr.spoken --out data/spoken

An utterance is one question (subtype, colour, negate: all its answer needs besides the scene) spoken by
one voice at one rate and pitch, with lead-in silence, noise, gain, reverberation and sometimes a
telephone band drawn for it. The answer depends on the scene and the audio only on the question, so
training pairs any scene with any utterance (soc.answer): a bounded pool of utterances serves every
epoch. Training voices and test voices are disjoint: the test voices are every variant of the held-out
dialects and the held-out variants in every dialect, so each has something no training voice has.

Cache: <out>/<split>/<split>-<shard>-<key>.npz, SHARD utterances each, named by a hash of what is in it
(texts, voices, augmentation, feature settings): a rerun synthesizes only what is missing, and a change of
plan never reuses stale audio. Each shard holds log-mel features (float16), the colour word's end time
and every word's boundaries; nothing here is committed (data/ is git-ignored).

The plan (texts, voices, rates, pitches, rooms, noise, gains) is deterministic; the audio is so only up to
eSpeak's pitch flutter, whose phase the library keeps between calls and offers no way to reset: the same
utterance rendered twice differs by a little jitter and a few samples.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import speech

FEATURE_VERSION = 1  # bump when rendering or features change: every cached shard is then made again
SHARD = 200  # utterances per cache file
TRAIN_UTTERANCES = 16000  # the training pool; each is heard with many scenes
MAX_TRAIN_SPEECH_S = 3.8  # a longer training utterance is spoken again faster (bounds the steps of a batch); the
# longest test question at the slowest rate (140 words/min) takes ~3.8 s
HELDOUT_DIALECTS = ("en-us-nyc", "en-gb-x-gbcwmd")
HELDOUT_VARIANTS = (
    "Annie", "Jacky", "anikaRobot", "boris", "croak", "edward2", "f3", "grandma",
    "iven3", "klatt4", "m5", "norbert", "quincy", "robosoft5", "steph2", "whisperf",
)
SPLIT_STREAMS = {"train": 10, "test": 11, "val": 12}  # rng streams apart from the scene generator's


@dataclass(frozen=True)
class Utterance:
    """How to make one spoken question: text, voice and augmentation, all drawn ahead (deterministic)."""

    text: str
    subtype: str
    colour: str
    negate: bool
    template: str
    voice: str  # eSpeak voice: dialect[+variant]
    rate: int  # words per minute
    pitch: int  # 0..100
    pitch_range: int  # 0..100
    lead: float  # seconds of silence before the speech
    trail: float  # ... and after it
    reverb_rt60: float  # 0 = dry
    reverb_wet: float
    telephone: bool  # band-limited through 8 kHz
    noise: str  # "" | white | pink | brown
    snr_db: float
    gain_db: float  # applied last; a loud gain clips at full scale (clipping is part of the data)
    max_speech_s: float  # 0 = no cap; else a longer rendering is spoken again faster
    seed: int  # noise and room draws

    @property
    def family(self) -> str:
        return "nonrelational" if self.subtype in soc.NONREL else "relational"

    def key(self, features: tuple) -> str:
        blob = json.dumps([asdict(self), list(features), FEATURE_VERSION], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------------------- voices


def voices(split: str) -> list[str]:
    """eSpeak voice names for a split: train never shares a (dialect, variant) pair, dialect or variant
    with the held-out sets; test (and val) is everything else."""
    variants = ("", *speech.variants())
    missing = sorted(set(HELDOUT_VARIANTS) - set(variants))
    if missing:
        raise RuntimeError(f"espeakng-loader lacks the voice variants {missing}; pin the version in requirements.txt")
    held = [(d in HELDOUT_DIALECTS or v in HELDOUT_VARIANTS) for d in speech.DIALECTS for v in variants]
    pairs = [(d, v) for d in speech.DIALECTS for v in variants]
    return [speech.voice_name(d, v) for (d, v), h in zip(pairs, held) if h == (split != "train")]


def draw_utterance(text: str, subtype: str, colour: str, negate: bool, template: str, voice_list: list[str],
                   rng: np.random.Generator, max_speech_s: float) -> Utterance:
    """Voice and augmentation for one question."""
    reverb = rng.random() < 0.4
    noise = str(rng.choice(["white", "pink", "brown"])) if rng.random() < 0.7 else ""
    return Utterance(
        text, subtype, colour, bool(negate), template,
        voice=voice_list[int(rng.integers(len(voice_list)))],
        rate=int(rng.integers(140, 241)),
        pitch=int(rng.integers(20, 81)),
        pitch_range=int(rng.integers(20, 91)),
        lead=round(float(rng.uniform(0.02, 0.2)), 3),
        trail=round(float(rng.uniform(0.05, 0.15)), 3),
        reverb_rt60=round(float(rng.uniform(0.15, 0.7)), 3) if reverb else 0.0,
        reverb_wet=round(float(rng.uniform(0.1, 0.5)), 3) if reverb else 0.0,
        telephone=bool(rng.random() < 0.1),
        noise=noise,
        snr_db=round(float(rng.uniform(5.0, 35.0)), 2) if noise else 0.0,
        gain_db=round(float(rng.uniform(-30.0, 6.0)), 2),
        max_speech_s=max_speech_s,
        seed=int(rng.integers(2**31)),
    )


def plan_train(count: int, seed: int = 0, frame_prob: float = 0.25) -> list[Utterance]:
    """The training pool: training wordings (TRAIN_WORDINGS, frames, surface noise), training voices;
    even indices non-relational, odd relational, subtype and colour uniform."""
    voice_list = voices("train")
    out = []
    for i in range(count):
        rng = np.random.default_rng([SPLIT_STREAMS["train"], seed, i])
        family = soc.NONREL if i % 2 == 0 else soc.REL
        subtype = family[int(rng.integers(len(family)))]
        colour = list(soc.COLOURS)[int(rng.integers(len(soc.COLOURS)))]
        text, negate, template = soc.question_text(subtype, colour, rng, "train", frame_prob)
        out.append(draw_utterance(text, subtype, colour, negate, template, voice_list, rng, MAX_TRAIN_SPEECH_S))
    return out


def plan_questions(samples: list[soc.Sample], split: str = "test", seed: int = 0) -> list[Utterance]:
    """One utterance per question of the samples, in order (sample by sample), in held-out voices."""
    voice_list = voices(split)
    out = []
    for sample in samples:
        for q in sample.questions:
            rng = np.random.default_rng([SPLIT_STREAMS[split], seed, len(out)])
            negate = soc.answer(sample.scene, q.subtype, q.colour) != q.answer  # a "right"/"bottom" wording
            out.append(draw_utterance(q.text, q.subtype, q.colour, negate, q.template, voice_list, rng, 0.0))
    return out


# ---------------------------------------------------------------------------------------- rendering


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    from scipy import fft

    if kind == "white":
        return rng.standard_normal(n).astype(np.float32)
    size = fft.next_fast_len(n, real=True)  # an awkward length would make the FFT many times slower
    spectrum = fft.rfft(rng.standard_normal(size).astype(np.float32))
    freqs = np.maximum(fft.rfftfreq(size), 1.0 / size)
    spectrum /= np.sqrt(freqs) if kind == "pink" else freqs  # 1/f power (pink) or 1/f^2 (brown)
    return fft.irfft(spectrum, size)[:n].astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def render(u: Utterance) -> tuple[np.ndarray, list[speech.Word]]:
    """The utterance as 16 kHz float32 samples and its word boundaries (shifted by the lead-in)."""
    import soxr
    from scipy.signal import fftconvolve

    spoken = speech.synthesize(u.text, u.voice, u.rate, u.pitch, u.pitch_range)
    seconds = len(spoken.samples) / spoken.sample_rate
    if u.max_speech_s and seconds > u.max_speech_s:
        spoken = speech.synthesize(u.text, u.voice, min(450, math.ceil(u.rate * seconds / u.max_speech_s * 1.05)), u.pitch, u.pitch_range)
    sr, rng = spoken.sample_rate, np.random.default_rng(u.seed)
    x = np.concatenate([np.zeros(int(u.lead * sr), np.float32), spoken.samples, np.zeros(int(u.trail * sr), np.float32)])
    level = _rms(spoken.samples)
    if u.reverb_rt60 > 0:  # a synthetic room: decaying noise after the direct sound
        t = np.arange(int(min(u.reverb_rt60, 0.8) * sr)) / sr
        ir = rng.standard_normal(len(t)).astype(np.float32) * np.exp(-6.9 * t / u.reverb_rt60).astype(np.float32)
        ir[0] = 0.0
        wet = fftconvolve(x, ir)[: len(x)].astype(np.float32)
        x = (1 - u.reverb_wet) * x + u.reverb_wet * wet * (level / max(_rms(wet), 1e-9))
    if u.telephone:
        x = soxr.resample(soxr.resample(x, sr, 8000), 8000, sr)[: len(x)]
    if u.noise:
        n = _noise(u.noise, len(x), rng)
        x = x + n * (level / max(_rms(n), 1e-9) * 10 ** (-u.snr_db / 20))
    x = np.clip(x * 10 ** (u.gain_db / 20), -1.0, 1.0).astype(np.float32)
    words = [speech.Word(w.text, round(w.start + u.lead, 4), round(w.end + u.lead, 4)) for w in spoken.words]
    return x, words


def colour_end(words: list[speech.Word], colour: str) -> float:
    """When the colour word has been heard (its end, seconds), or -1 when eSpeak reported no such word."""
    names = set(soc.COLOUR_ALIASES.get(colour, (colour,)))
    for w in words:
        if "".join(ch for ch in w.text.lower() if ch.isalpha()) in names:
            return w.end
    return -1.0


# -------------------------------------------------------------------------------------------- cache


@dataclass
class SpokenPool:
    """Utterances with their log-mel frames, in plan order."""

    utterances: list[Utterance]
    features: np.ndarray  # (total frames, M) float16, utterance after utterance
    offsets: np.ndarray  # (n + 1,) frame offsets into features
    colour_ends: np.ndarray  # (n,) seconds; -1 = colour word not found

    def __len__(self) -> int:
        return len(self.utterances)

    def frames(self, i: int) -> np.ndarray:
        return self.features[self.offsets[i] : self.offsets[i + 1]]  # (L_i, M)


def feature_settings(cfg) -> tuple:
    """What the cached features depend on in a ModelConfig."""
    return (cfg.sample_rate, cfg.n_mels, cfg.hop_ms)


def _render_shard(utterances: list[Utterance], settings: tuple) -> dict:
    """Worker: synthesize and featurize one shard (runs in its own process: eSpeak is per process)."""
    import torch

    from mmdemo.audio import log_mel

    torch.set_num_threads(1)
    sample_rate, n_mels, hop_ms = settings
    feats, ends, words = [], [], []
    for u in utterances:
        x, w = render(u)
        feats.append(log_mel(x, sample_rate, n_mels, hop_ms).numpy().astype(np.float16))
        ends.append(colour_end(w, u.colour))
        words.append([[wd.text, wd.start, wd.end] for wd in w])
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    return {
        "features": np.concatenate(feats) if feats else np.zeros((0, n_mels), np.float16),
        "lengths": lengths,
        "colour_ends": np.array(ends, dtype=np.float32),
        "words": np.array(json.dumps(words)),
        "utterances": np.array(json.dumps([asdict(u) for u in utterances])),
    }


def _shard_path(folder: Path, split: str, index: int, utterances: list[Utterance], settings: tuple) -> Path:
    key = hashlib.sha1("".join(u.key(settings) for u in utterances).encode()).hexdigest()[:16]
    return folder / split / f"{split}-{index:04d}-{key}.npz"


def _shards(utterances: list[Utterance]) -> Iterator[tuple[int, list[Utterance]]]:
    for i in range(0, len(utterances), SHARD):
        yield i // SHARD, utterances[i : i + SHARD]


def synthesize_missing(utterances: list[Utterance], folder: str | Path, split: str, settings: tuple,
                       workers: int = 0, progress: bool = True) -> dict:
    """Make every shard of the plan that is not cached yet; returns {made, cached, seconds, utterances_per_s}."""
    folder = Path(folder)
    todo = [(i, us, _shard_path(folder, split, i, us, settings)) for i, us in _shards(utterances)]
    missing = [t for t in todo if not t[2].is_file()]
    cached = len(utterances) - sum(len(us) for _, us, _ in missing)
    started = time.time()
    bar = tqdm(total=len(utterances), initial=cached, desc=f"speak {split}", unit="utt", disable=not progress)
    workers = workers or os.cpu_count() or 1

    def save(path: Path, shard: dict, n: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **shard)
        tmp.replace(path)  # atomic: an interrupted run leaves no half shard
        bar.update(n)

    if workers == 1 or len(missing) <= 1:
        for _, us, path in missing:
            save(path, _render_shard(us, settings), len(us))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [(pool.submit(_render_shard, us, settings), path, len(us)) for _, us, path in missing]
            for future, path, n in futures:
                save(path, future.result(), n)
    bar.close()
    made = len(utterances) - cached
    seconds = time.time() - started
    return {"made": made, "cached": cached, "seconds": round(seconds, 1), "utterances_per_s": round(made / seconds, 1) if made else None}


def load_pool(utterances: list[Utterance], folder: str | Path, split: str, settings: tuple,
              workers: int = 0, progress: bool = True) -> SpokenPool:
    """The plan's features from the cache, synthesizing what is missing first."""
    synthesize_missing(utterances, folder, split, settings, workers, progress)
    feats, lengths, ends = [], [], []
    for i, us in _shards(utterances):
        with np.load(_shard_path(Path(folder), split, i, us, settings)) as z:
            feats.append(z["features"])
            lengths.append(z["lengths"])
            ends.append(z["colour_ends"])
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(all_lengths)]).astype(np.int64)
    features = np.concatenate(feats) if feats else np.zeros((0, settings[1]), np.float16)
    return SpokenPool(utterances, features, offsets, np.concatenate(ends) if ends else np.zeros(0, np.float32))


def read_words(folder: str | Path, split: str, utterances: list[Utterance], settings: tuple) -> list[list[speech.Word]]:
    """Every utterance's word boundaries, from the cache (for inspection and tests)."""
    out = []
    for i, us in _shards(utterances):
        with np.load(_shard_path(Path(folder), split, i, us, settings)) as z:
            out += [[speech.Word(t, s, e) for t, s, e in ws] for ws in json.loads(str(z["words"]))]
    return out


# ------------------------------------------------------------------------------------------ examples

# Shipped example recordings (examples/spoken): the app's example questions, in held-out voices, clean.
EXAMPLES = (
    ("red-shape", "What shape is the red object?", "en-us-nyc+f3"),
    ("blue-left", "Is the blue object on the left side of the image?", "en-gb-x-gbcwmd"),
    ("green-closest", "What shape is the object closest to the green object?", "en-us+m5"),
    ("orange-count", "How many objects have the same shape as the orange object?", "en+Annie"),
    ("gray-top", "Is the gray object in the top half of the image?", "en-gb-x-rp+quincy"),
    ("yellow-furthest", "What shape is the object furthest from the yellow object?", "en-029+steph2"),
)


def write_examples(folder: str | Path) -> list[Path]:
    """Speak EXAMPLES into folder as 16 kHz mono OGG Vorbis (a few KB each) plus examples.json with each
    file's question, voice and word boundaries; returns the sound files."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index, paths = [], []
    for slug, text, voice in EXAMPLES:
        sp = speech.synthesize(text, voice)
        name = f"{slug}.ogg"
        sf.write(folder / name, sp.samples, sp.sample_rate, format="OGG", subtype="VORBIS")
        index.append({"file": name, "question": text, "voice": voice, "sample_rate": sp.sample_rate,
                      "words": [[w.text, w.start, w.end] for w in sp.words]})
        paths.append(folder / name)
    (folder / "examples.json").write_text("[\n" + ",\n".join(json.dumps(entry) for entry in index) + "\n]\n")
    return paths


# ---------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    from mmdemo.config import ModelConfig, TrainConfig

    m, t = ModelConfig(question_input="audio"), TrainConfig()
    p = argparse.ArgumentParser(prog="python -m mmdemo.tasks.sort_of_clevr.spoken", description=__doc__.split("\n\n")[0] + " Makes the training pool and the held-out-voice test questions.")
    p.add_argument("--out", default=t.spoken_data, help="cache folder (default %(default)s)")
    p.add_argument("--train", type=int, default=t.spoken_utterances, help="training utterances (default %(default)s; 0 = none)")
    p.add_argument("--test-wording", choices=("canonical", "heldout", "train", "none"), default="canonical", help="voice the test split's 4,000 questions in this wording (default %(default)s)")
    p.add_argument("--frames", type=float, default=t.frames, help="share of training questions wrapped in filler (default %(default)s)")
    p.add_argument("--seed", type=int, default=t.seed, help="training pool seed, the train command's --seed (default %(default)s)")
    p.add_argument("--n-mels", type=int, default=m.n_mels, help="mel bands (default %(default)s)")
    p.add_argument("--hop-ms", type=int, default=m.hop_ms, help="frame hop in ms (default %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per CPU)")
    p.add_argument("--list-voices", action="store_true", help="print the training and held-out voices and exit")
    p.add_argument("--examples", metavar="DIR", default=None, help="write the example recordings (examples/spoken) into DIR and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    ok, why = speech.available()
    if not ok:
        sys.stderr.write(f"error: {why}\n")
        return 2
    if args.list_voices:
        for split in ("train", "test"):
            print(f"{split} ({len(voices(split))}): {' '.join(voices(split))}")
        return 0
    if args.examples:
        for path in write_examples(args.examples):
            print(path)
        return 0
    if args.train < 0 or not 0 <= args.frames <= 1 or args.workers < 0:
        sys.stderr.write("error: --train and --workers must be >= 0, --frames in [0, 1]\n")
        return 2
    settings = (m.sample_rate, args.n_mels, args.hop_ms)
    report = {}
    if args.train:
        report["train"] = synthesize_missing(plan_train(args.train, args.seed, args.frames), args.out, "train", settings, args.workers, not args.quiet)
    if args.test_wording != "none":
        plan = plan_questions(soc.test_split(args.test_wording), "test")
        report[f"test-{args.test_wording}"] = synthesize_missing(plan, args.out, "test", settings, args.workers, not args.quiet)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
