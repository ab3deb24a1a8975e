"""Spoken Sort-of-CLEVR questions: three synthesizers voice the generator's questions, features are cached on disk.

    python -m mmdemo.tasks.sort_of_clevr.spoken --out data/spoken

An utterance is one question (subtype, colour, negate: all its answer needs besides the scene) spoken by
one voice of eSpeak NG, Festival or Piper (synthesizers.py) at one speed and pitch, with the rooms,
microphones, babble, noise and gain drawn for it (augment.py). The answer depends on the scene and the audio
only on the question, so training pairs any scene with any utterance (soc.answer): a bounded pool of
utterances serves every epoch. Training voices and test voices are disjoint: eSpeak's test voices are every
variant of the held-out dialects and the held-out variants in every dialect, Festival's is a voice never
trained on, Piper's are its one speaker scaled outside the training range.

Cache: <out>/<split>/<split>-<shard>-<key>.npz, SHARD utterances each, named by a hash of what is in it
(texts, voices, augmentation, feature settings): a rerun synthesizes only what is missing, and a change of
plan never reuses stale audio. Each shard holds log-mel features (float16), the colour word's end time
and every word's boundaries; nothing here is committed (data/ is git-ignored).

The plan (texts, voices, speeds, pitches, rooms, noise, gains) is deterministic; the audio is so only up to
eSpeak's pitch flutter (its phase is kept between calls) and Piper's sampled delivery.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mmdemo.config import CONDITIONS
from mmdemo.tasks.sort_of_clevr import augment, speech, synthesizers
from mmdemo.tasks.sort_of_clevr import data as soc

FEATURE_VERSION = 3  # bump when rendering or features change: every cached shard is then made again
SHARD = 200  # utterances per cache file
TRAIN_UTTERANCES = 16000  # the training pool; each is heard with many scenes
MAX_TRAIN_SPEECH_S = 3.8  # a longer training utterance is spoken again faster (bounds the steps of a batch); the
# longest test question at the slowest rate takes ~3.8 s
SYNTHS = ("espeak", "festival", "piper")
TRAIN_SHARE = (0.45, 0.35, 0.2)  # of the training pool, per synthesizer
HELDOUT_DIALECTS = ("en-us-nyc", "en-gb-x-gbcwmd")
HELDOUT_VARIANTS = (
    "Annie", "Jacky", "anikaRobot", "boris", "croak", "edward2", "f3", "grandma",
    "iven3", "klatt4", "m5", "norbert", "quincy", "robosoft5", "steph2", "whisperf",
)
HELDOUT_FESTIVAL = ("ked_diphone",)  # a whole Festival voice (of three) never trained on
# Piper ships one speaker offline (joe). Its training renderings warp the voice by 0.92-1.08 (as every
# synthesizer's); its test voices are joe with the vocal tract scaled outside that range (a lower and a
# higher "speaker" made from the same one): held-out renderings of a trained-on speaker, named as such.
PIPER_TEST_WARPS = {"joe-low": 0.86, "joe-high": 1.14}
TRAIN_WARP = (0.92, 1.08)
SPLIT_STREAMS = {"train": 10, "test": 11, "val": 12}  # rng streams apart from the scene generator's
# "valwarp": the val split's questions and renderings with every voice's vocal tract moved outside the training
# range (x0.89 or x1.11, between TRAIN_WARP and Piper's test warps): new "speakers" made from training voices, for
# choosing what is aimed at new voices without the test split. Everything else is drawn as for "val".
VAL_WARPS = (0.89, 1.11)
SPLIT_VOICES = {"test": "held-out", "val": "training voices (val)", "valwarp": "training voices warped outside the training range (valwarp)"}


@dataclass(frozen=True)
class Utterance:
    """How to make one spoken question: text, voice and augmentation, all drawn ahead (deterministic)."""

    text: str
    subtype: str
    colour: str
    negate: bool
    template: str
    synth: str  # espeak | festival | piper
    voice: str  # eSpeak: dialect[+variant]; Festival: its voice name; Piper: joe | joe-low | joe-high
    tempo: float  # 1 = the synthesizer's own speed; > 1 faster (eSpeak 175 x tempo words/min)
    pitch: int  # 0..100: eSpeak's pitch; Festival diphone voices aim at 80 + pitch Hz; Piper's noise width
    pitch_range: int  # 0..100: eSpeak's range; Festival's F0 spread 5 + range / 4 Hz; Piper's noise scale
    word_gap: int  # eSpeak only: extra pause between words, x 10 ms
    warp: float  # speed perturbation (pitch and formants move with it); 1 = none
    semitones: float  # pitch shift (audiomentations); 0 = none
    lead: float  # seconds of silence before the speech
    trail: float  # ... and after it
    room_rt60: float  # 0 = dry; else a simulated shoebox room (pyroomacoustics)
    band: str  # "" | phone | laptop
    noise: str  # "" | white | pink | brown
    snr_db: float
    babble_talkers: int  # 0 = none
    babble_snr_db: float
    gain_db: float  # applied last; a loud gain clips at full scale (clipping is part of the data)
    max_speech_s: float  # 0 = no cap; else a longer rendering is spoken again faster
    seed: int  # noise, room and babble draws

    @property
    def family(self) -> str:
        return "nonrelational" if self.subtype in soc.NONREL else "relational"

    def key(self, features: tuple) -> str:
        blob = json.dumps([asdict(self), list(features), FEATURE_VERSION], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------------------- voices


def voices(split: str, synth: str = "espeak") -> list[str]:
    """Voice names of one synthesizer for a split. eSpeak: train never shares a (dialect, variant) pair,
    dialect or variant with the held-out sets; test is everything else. Festival: the held-out voice for
    test. Piper: joe for train, the warped joes for test. "val" (thresholds) and "valwarp" use the training voices."""
    held_out = split == "test"
    if synth == "festival":
        return [v for v in synthesizers.FESTIVAL_VOICES if (v in HELDOUT_FESTIVAL) == held_out]
    if synth == "piper":
        return list(PIPER_TEST_WARPS) if held_out else list(synthesizers.PIPER_VOICES)
    if synth != "espeak":
        raise ValueError(f"unknown synthesizer {synth!r}; one of {SYNTHS}")
    variants = ("", *speech.variants())
    missing = sorted(set(HELDOUT_VARIANTS) - set(variants))
    if missing:
        raise RuntimeError(f"espeakng-loader lacks the voice variants {missing}; pin the version in requirements.txt")
    held = [(d in HELDOUT_DIALECTS or v in HELDOUT_VARIANTS) for d in speech.DIALECTS for v in variants]
    pairs = [(d, v) for d in speech.DIALECTS for v in variants]
    return [speech.voice_name(d, v) for (d, v), h in zip(pairs, held) if h == held_out]


def draw_utterance(text: str, subtype: str, colour: str, negate: bool, template: str, synth: str, voice_list: list[str],
                   rng: np.random.Generator, max_speech_s: float, condition: str = "mixed") -> Utterance:
    """Voice and augmentation for one question. "mixed" draws every effect (training and the test split
    alike); the other conditions fix one: "clean" (none), "babble10" (4 talkers at 10 dB SNR), "room" (a
    reverberant room, RT60 0.6-0.9 s), "phone" (the telephone band)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; one of {CONDITIONS}")
    voice = voice_list[int(rng.integers(len(voice_list)))]
    tempo = {"espeak": (0.7, 1.7), "festival": (0.75, 1.3), "piper": (0.75, 1.3)}[synth]
    warp = PIPER_TEST_WARPS.get(voice) or float(rng.uniform(*TRAIN_WARP))
    reverb, babble_on = rng.random() < 0.4, rng.random() < 0.2
    noise = str(rng.choice(["white", "pink", "brown"])) if rng.random() < 0.5 else ""
    band = str(rng.choice(["phone", "laptop"])) if rng.random() < 0.2 else ""
    semitones = float(rng.uniform(-2.0, 2.0)) if rng.random() < 0.3 else 0.0
    draws = {
        "tempo": round(float(rng.uniform(*tempo)), 3),
        "pitch": int(rng.integers(10, 91)),
        "pitch_range": int(rng.integers(10, 101)),
        "word_gap": int(rng.integers(0, 9)) if rng.random() < 0.3 else 0,
        "warp": round(warp, 3),
        "semitones": round(semitones, 2),
        "lead": round(float(rng.uniform(0.02, 0.4)), 3),
        "trail": round(float(rng.uniform(0.05, 0.3)), 3),
        "room_rt60": round(float(rng.uniform(0.2, 0.9)), 3) if reverb else 0.0,
        "band": band,
        "noise": noise,
        "snr_db": round(float(rng.uniform(5.0, 35.0)), 2) if noise else 0.0,
        "babble_talkers": int(rng.integers(2, 7)) if babble_on else 0,
        "babble_snr_db": round(float(rng.uniform(5.0, 30.0)), 2) if babble_on else 0.0,
        "gain_db": round(float(rng.uniform(-30.0, 6.0)), 2),
        "seed": int(rng.integers(2**31)),
    }
    if condition != "mixed":  # one effect alone, the voice's own delivery kept
        draws.update({"semitones": 0.0, "room_rt60": 0.0, "band": "", "noise": "", "snr_db": 0.0, "babble_talkers": 0, "babble_snr_db": 0.0, "gain_db": -6.0})
        if condition == "babble10":
            draws.update({"babble_talkers": 4, "babble_snr_db": 10.0})
        elif condition == "room":
            draws["room_rt60"] = round(float(rng.uniform(0.6, 0.9)), 3)
        elif condition == "phone":
            draws["band"] = "phone"
    return Utterance(text, subtype, colour, bool(negate), template, synth, voice, max_speech_s=max_speech_s, **draws)


def plan_train(count: int, seed: int = 0, frame_prob: float = 0.25) -> list[Utterance]:
    """The training pool: training wordings (TRAIN_WORDINGS, frames, surface noise), training voices of
    every synthesizer (TRAIN_SHARE); even indices non-relational, odd relational, subtype and colour uniform."""
    voice_lists = {synth: voices("train", synth) for synth in SYNTHS}
    out = []
    for i in range(count):
        rng = np.random.default_rng([SPLIT_STREAMS["train"], seed, i])
        family = soc.NONREL if i % 2 == 0 else soc.REL
        subtype = family[int(rng.integers(len(family)))]
        colour = list(soc.COLOURS)[int(rng.integers(len(soc.COLOURS)))]
        text, negate, template = soc.question_text(subtype, colour, rng, "train", frame_prob)
        synth = SYNTHS[int(rng.choice(len(SYNTHS), p=TRAIN_SHARE))]
        out.append(draw_utterance(text, subtype, colour, negate, template, synth, voice_lists[synth], rng, MAX_TRAIN_SPEECH_S))
    return out


def plan_questions(samples: list[soc.Sample], split: str = "test", seed: int = 0, condition: str = "mixed") -> list[Utterance]:
    """One utterance per question of the samples, in order (sample by sample): question j in synthesizer
    SYNTHS[j % 3] (a third each), in the split's voices ("test": held out; "val": training voices; "valwarp":
    val's, each voice warped by VAL_WARPS[(j // 3) % 2] instead of its training-range warp)."""
    warped = split == "valwarp"
    stream = SPLIT_STREAMS["val" if warped else split]
    voice_lists = {synth: voices(split, synth) for synth in SYNTHS}
    out = []
    for sample in samples:
        for q in sample.questions:
            rng = np.random.default_rng([stream, seed, len(out)])
            synth = SYNTHS[len(out) % len(SYNTHS)]
            negate = soc.answer(sample.scene, q.subtype, q.colour) != q.answer  # a "right"/"bottom" wording
            u = draw_utterance(q.text, q.subtype, q.colour, negate, q.template, synth, voice_lists[synth], rng, 0.0, condition)
            out.append(replace(u, warp=VAL_WARPS[(len(out) // len(SYNTHS)) % 2]) if warped else u)
    return out


# ---------------------------------------------------------------------------------------- rendering


def _speak(u: Utterance, tempo: float, festival_cache: dict | None = None) -> speech.Speech:
    """The dry voice: the utterance's synthesizer at this tempo."""
    if u.synth == "espeak":
        sp = speech.synthesize(u.text, u.voice, round(speech.DEFAULT_RATE * tempo), u.pitch, u.pitch_range, u.word_gap)
    elif u.synth == "festival":
        line = festival_line(u, tempo)
        sp = (festival_cache or {}).get(line) or synthesizers.festival([line])[0]
    elif u.synth == "piper":
        line = synthesizers.PiperLine("joe", u.text, round(1.0 / tempo, 3), 0.4 + 0.5 * u.pitch_range / 100, 0.5 + 0.6 * u.pitch / 100)
        sp = synthesizers.piper(line, marker=_colour_word(u.text, u.colour))
    else:
        raise ValueError(f"unknown synthesizer {u.synth!r}")
    return sp


def festival_line(u: Utterance, tempo: float | None = None) -> synthesizers.FestivalLine:
    """What Festival is asked to say for a Festival utterance (at its own tempo unless told another)."""
    tempo = u.tempo if tempo is None else tempo
    return synthesizers.FestivalLine(u.voice, u.text, round(1.0 / tempo, 3), 80.0 + u.pitch, 5.0 + u.pitch_range / 4)


def _is_colour(word: str, colour: str) -> bool:
    """Whether a written word (punctuation and case aside) names the colour or one of its aliases ("grey")."""
    return "".join(ch for ch in word.lower() if ch.isalpha()) in soc.COLOUR_ALIASES.get(colour, (colour,))


def _colour_word(text: str, colour: str) -> str:
    """The colour as written in the text ("grey" for gray, say): where Piper's word timing is re-measured."""
    return next(("".join(ch for ch in word if ch.isalpha()) for word in text.split() if _is_colour(word, colour)), "")


def render(u: Utterance, festival_cache: dict | None = None) -> tuple[np.ndarray, list[speech.Word]]:
    """The utterance as 16 kHz float32 samples and its word boundaries (after warp and lead-in)."""
    spoken = _speak(u, u.tempo, festival_cache)
    seconds = len(spoken.samples) / spoken.sample_rate / u.warp
    if u.max_speech_s and seconds > u.max_speech_s:
        spoken = _speak(u, min(2.6, u.tempo * seconds / u.max_speech_s * 1.05))
    sr, rng = spoken.sample_rate, np.random.default_rng(u.seed)
    voice = augment.pitch_shift(augment.warp(spoken.samples, u.warp), u.semitones)
    x = np.concatenate([np.zeros(int(u.lead * sr), np.float32), voice, np.zeros(int(u.trail * sr), np.float32)])
    level = augment.rms(voice)
    if u.room_rt60 > 0:
        x = augment.reverberate(x, u.room_rt60, rng)
    if u.babble_talkers:
        talkers = augment.babble(len(x), u.babble_talkers, voices("train"), rng)  # background talk: training eSpeak voices
        x = x + augment.at_snr(level, talkers, u.babble_snr_db)
    if u.band:
        x = augment.band_limit(x, u.band)
    if u.noise:
        x = x + augment.at_snr(level, augment.coloured_noise(u.noise, len(x), rng), u.snr_db)
    x = np.clip(x * 10 ** (u.gain_db / 20), -1.0, 1.0).astype(np.float32)
    words = [speech.Word(w.text, round(w.start / u.warp + u.lead, 4), round(w.end / u.warp + u.lead, 4)) for w in spoken.words]
    return x, words


def colour_end(words: list[speech.Word], colour: str) -> float:
    """When the colour word has been heard (its end, seconds), or -1 when the synthesizer reported no such word."""
    return next((w.end for w in words if _is_colour(w.text, colour)), -1.0)


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
    lines = [festival_line(u, u.tempo) for u in utterances if u.synth == "festival"]
    festival_cache = dict(zip(lines, synthesizers.festival(lines)))  # one Festival process per shard
    for u in utterances:
        x, w = render(u, festival_cache)
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
                       workers: int = 0, progress: bool = True, part: tuple[int, int] = (0, 1)) -> dict:
    """Make every shard of the plan that is not cached yet; returns {made, cached, seconds, utterances_per_s}.
    part (k, n): make only the missing shards whose index is k modulo n (n training processes on one machine
    share the work; `others` counts the utterances left to them)."""
    folder = Path(folder)
    todo = [(i, us, _shard_path(folder, split, i, us, settings)) for i, us in _shards(utterances)]
    absent = [t for t in todo if not t[2].is_file()]
    missing = [t for t in absent if t[0] % part[1] == part[0]]
    cached = len(utterances) - sum(len(us) for _, us, _ in absent)
    others = sum(len(us) for _, us, _ in absent) - sum(len(us) for _, us, _ in missing)
    started = time.time()
    bar = tqdm(total=len(utterances) - others, initial=cached, desc=f"speak {split}", unit="utt", disable=not progress)
    workers = workers or os.cpu_count() or 1

    def save(path: Path, shard: dict, n: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # a process's own: two never write the same file
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
    made = sum(len(us) for _, us, _ in missing)
    seconds = time.time() - started
    report = {"made": made, "cached": cached, "seconds": round(seconds, 1), "utterances_per_s": round(made / seconds, 1) if made else None}
    return report | ({"others": others} if part[1] > 1 else {})


POOL_WAIT_S = 4 * 3600  # how long a training process waits for the shards another one is making


def load_pool(utterances: list[Utterance], folder: str | Path, split: str, settings: tuple,
              workers: int = 0, progress: bool = True, part: tuple[int, int] = (0, 1)) -> SpokenPool:
    """The plan's features from the cache, synthesizing what is missing first (with part (k, n): this process's
    share, then waiting for the other processes' shards)."""
    made = synthesize_missing(utterances, folder, split, settings, workers, progress, part)
    paths = [_shard_path(Path(folder), split, i, us, settings) for i, us in _shards(utterances)]
    if made.get("others") and progress:
        sys.stderr.write(f"waiting for the other training processes' {made['others']} utterances\n")
    deadline = time.time() + POOL_WAIT_S
    while not all(p.is_file() for p in paths):
        if time.time() > deadline:
            raise RuntimeError(f"waited {POOL_WAIT_S // 3600} h for the other training processes' utterances in {folder}")
        time.sleep(1.0)
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
    return [words for words, _ in read_spans(folder, split, utterances, settings)]


def read_spans(folder: str | Path, split: str, utterances: list[Utterance], settings: tuple) -> list[tuple[list[speech.Word], int]]:
    """Every utterance's word boundaries and frame count, from the cache, without its frames."""
    out = []
    for i, us in _shards(utterances):
        with np.load(_shard_path(Path(folder), split, i, us, settings)) as z:
            words = [[speech.Word(t, s, e) for t, s, e in ws] for ws in json.loads(str(z["words"]))]
            out += list(zip(words, (int(n) for n in z["lengths"]), strict=True))
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
    from mmdemo.config import ModelConfig, TrainConfig, spoken_defaults

    m, t = ModelConfig(question_input="audio"), TrainConfig()
    p = argparse.ArgumentParser(prog="python -m mmdemo.tasks.sort_of_clevr.spoken", description=__doc__.split("\n\n")[0] + " Makes the training pool and the held-out-voice test questions.")
    p.add_argument("--out", default=t.spoken_data, help="cache folder (default %(default)s)")
    pool = spoken_defaults().get("spoken_utterances", t.spoken_utterances)  # the train command's pool with --question-input audio
    p.add_argument("--train", type=int, default=pool, help="training utterances (default %(default)s: the spoken preset's; 0 = none)")
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
    ok, why = speech.available() if args.examples else synthesizers.available()
    if not ok:
        sys.stderr.write(f"error: {why}\n")
        return 2
    if args.list_voices:
        for split in ("train", "test"):
            for synth in SYNTHS:
                print(f"{split} {synth} ({len(voices(split, synth))}): {' '.join(voices(split, synth))}")
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
