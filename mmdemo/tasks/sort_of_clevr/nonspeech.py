"""Sounds that are not questions, and the voice-activity gate's threshold chosen on them (mmdemo/gate.py).

    python -m mmdemo.tasks.sort_of_clevr.nonspeech fit   [--json]   # choose min_speech_s on val, write gate.json
    python -m mmdemo.tasks.sort_of_clevr.nonspeech check [--json]   # refusals on the test bank and held-out voices

bank(split, n) is a deterministic set of non-speech sounds at 16 kHz: tones, beeps, sweeps, music, mains hum,
noise, clapping, DC, silence and mixtures, 0.5-6 s, -40 to -3 dBFS peak, some clipped. "val" and "test"
draw from disjoint seed streams; fit sees only val, check only test.

Speech comes from SPEECH_SOURCES: each takes (split, count) and returns clips (float32 mono 16 kHz). "clean"
is questions voiced by every training synthesizer (eSpeak NG, Festival, Piper; spoken.plan_questions) with no
effect added: training voices on fresh validation scenes for "val", held-out voices on the test split for
"test". "mixed" renders them as the spoken model was trained (noise, babble, rooms, bands, gain); check reports
it, fit uses what it is given (clean by default).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mmdemo import gate
from mmdemo.tasks.sort_of_clevr.augment import coloured_noise, rms

SAMPLE_RATE = gate.SAMPLE_RATE
KINDS = ("tone", "beeps", "sweep", "music", "hum", "noise", "clapping", "dc", "silence", "hum+noise", "music+noise")
BANK_STREAMS = {"val": 31, "test": 32}  # rng streams for the non-speech bank (apart from every other stream)
MAX_REFUSAL = 0.01  # fit: the largest min_speech_s that refuses at most this share of clean validation speech
TARGET_REFUSED = 0.95  # fit: the share of non-speech the gate should refuse (reported; the threshold moves only if missed)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)  # Silero thresholds fit tries, in order, when 0.5 misses TARGET_REFUSED
PER_KIND, SPEECH_COUNT = 50, 2000  # CLI defaults: clips per kind and speech clips per split
DTMF_LOW, DTMF_HIGH = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 7, 9))  # major, minor, pentatonic (semitones)

# ------------------------------------------------------------------------------------------- sounds


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _fade(x: np.ndarray, seconds: float) -> np.ndarray:
    """Raised-cosine fade in and out (no click at a note's edges)."""
    k = min(int(seconds * SAMPLE_RATE), len(x) // 2)
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def _tone(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    f = 440.0 if i % 4 == 0 else float(np.exp(rng.uniform(np.log(100), np.log(4000))))  # every 4th: concert A
    x = np.sin(2 * np.pi * f * _t(n) + rng.uniform(0, 2 * np.pi))
    return _fade(x, 0.01) if rng.random() < 0.5 else x  # half start and stop with a click


def _beeps(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    """DTMF digits, or repeated two-tone beeps (phone-like), with gaps; or a steady dial tone."""
    style = rng.integers(3)
    if style == 2:  # dial / busy / ringback tone pairs, steady or cadenced
        f1, f2 = ((350, 440), (480, 620), (440, 480))[rng.integers(3)]
        x = np.sin(2 * np.pi * f1 * _t(n)) + np.sin(2 * np.pi * f2 * _t(n))
        if rng.random() < 0.5:
            x *= (np.floor(_t(n) / rng.uniform(0.25, 2.0)) % 2 == 0)
        return x
    x, pos = np.zeros(n), int(rng.uniform(0, 0.3) * SAMPLE_RATE)
    pair = (rng.uniform(300, 1500), rng.uniform(1500, 3000))
    while pos < n:
        length = min(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE), n - pos)
        f1, f2 = (DTMF_LOW[rng.integers(4)], DTMF_HIGH[rng.integers(4)]) if style == 0 else pair
        t = _t(length)
        x[pos : pos + length] = _fade(np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t), 0.003)
        pos += length + int(rng.uniform(0.04, 0.3) * SAMPLE_RATE)
    return x


def _sweep(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    """A linear or logarithmic chirp between two frequencies in 50-8000 Hz, once or repeated (siren-like)."""
    f0, f1 = np.exp(rng.uniform(np.log(50), np.log(7900), size=2))
    period = n if rng.random() < 0.5 else int(rng.uniform(0.3, 2.0) * SAMPLE_RATE)
    u = (np.arange(n) % period) / period  # 0..1 within each sweep
    if rng.random() < 0.5:
        u = 1 - np.abs(2 * u - 1)  # up and down
    freq = f0 + (f1 - f0) * u if rng.random() < 0.5 else f0 * (f1 / f0) ** u
    return np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)


def _note(rng: np.random.Generator, f: float, n: int, timbre: np.ndarray, vibrato: float) -> np.ndarray:
    """One note: harmonics weighted by timbre, an attack and an exponential decay, optional vibrato."""
    t = _t(n)
    phase = 2 * np.pi * f * t + vibrato * np.sin(2 * np.pi * 5.5 * t) * f / 5.5 * 0.01
    x = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(timbre) if (k + 1) * f < SAMPLE_RATE / 2)
    attack = min(int(rng.uniform(0.005, 0.05) * SAMPLE_RATE), n)
    env = np.exp(-t / rng.uniform(0.1, 1.0))
    env[:attack] *= np.linspace(0, 1, attack)
    return _fade(x * env, 0.005)


def _music(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    """A synthetic melody in a scale, with harmonics and envelopes; over chords for about half the clips."""
    beat = 60.0 / rng.uniform(60, 180)
    scale, root = SCALES[rng.integers(len(SCALES))], int(rng.integers(48, 72))
    timbre = rng.uniform(0.1, 1.0, size=int(rng.integers(1, 9)))
    timbre = timbre / np.arange(1, len(timbre) + 1)  # 1-8 harmonics, falling off as 1/k times a random weight
    vibrato = float(rng.uniform(0, 1)) if rng.random() < 0.3 else 0.0
    x, pos, degree = np.zeros(n), 0, int(rng.integers(len(scale)))
    while pos < n:
        length = min(int(beat * rng.choice([0.5, 1, 1, 2]) * SAMPLE_RATE), n - pos)
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
        midi = root + 12 * (degree // len(scale)) + scale[degree % len(scale)]
        if rng.random() > 0.1:  # a rest now and then
            x[pos : pos + length] += _note(rng, 440.0 * 2 ** ((midi - 69) / 12), length, timbre, vibrato)
        pos += length
    if rng.random() < 0.5:  # chords: a triad on a scale degree, one per bar (4 beats)
        bar, pos = int(4 * beat * SAMPLE_RATE), 0
        while pos < n:
            length, d = min(bar, n - pos), int(rng.integers(len(scale)))
            for step in (0, 2, 4):
                deg = d + step
                midi = root - 12 + 12 * (deg // len(scale)) + scale[deg % len(scale)]
                x[pos : pos + length] += 0.5 * _note(rng, 440.0 * 2 ** ((midi - 69) / 12), length, timbre, 0.0)
            pos += length
    return x


def _hum(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and up to 12 harmonics (odd ones stronger for a buzz), a slow wobble."""
    f, t = (50.0, 60.0)[rng.integers(2)], _t(n)
    amps = rng.uniform(0, 1, size=12) * np.where(np.arange(1, 13) % 2 == 1, 1.0, rng.uniform(0, 1))
    amps[0] = max(amps[0], 0.5)
    x = sum(a * np.sin(2 * np.pi * (k + 1) * f * t + rng.uniform(0, 2 * np.pi)) for k, a in enumerate(amps))
    return x * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 2) * t))


def _noise(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    return coloured_noise(("white", "pink", "brown")[i % 3], n, rng).astype(np.float64)


def _clapping(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    """Claps: 5-40 ms decaying noise bursts (high-passed by a difference) at irregular intervals, 1-10 a second."""
    x, pos = np.zeros(n), int(rng.uniform(0, 0.5) * SAMPLE_RATE)
    rate = rng.uniform(1, 10)
    while pos < n:
        length = min(int(0.2 * SAMPLE_RATE), n - pos)
        burst = np.diff(rng.standard_normal(length + 1)) * np.exp(-_t(length) / rng.uniform(0.005, 0.04))
        x[pos : pos + length] += rng.uniform(0.3, 1.0) * burst
        pos += max(int(rng.exponential(1 / rate) * SAMPLE_RATE), int(0.05 * SAMPLE_RATE))
    return x


def _dc(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
    return np.full(n, 1.0 if rng.random() < 0.5 else -1.0)


def _mixture(a: Callable, b: Callable) -> Callable:
    def mix(rng: np.random.Generator, n: int, i: int) -> np.ndarray:
        x, y = a(rng, n, i), b(rng, n, i)
        snr_db = rng.uniform(-10, 20)  # the first sound over the noise
        return x / max(rms(x), 1e-12) + y / max(rms(y), 1e-12) * 10 ** (-snr_db / 20)

    return mix


MAKERS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "tone": _tone, "beeps": _beeps, "sweep": _sweep, "music": _music, "hum": _hum, "noise": _noise,
    "clapping": _clapping, "dc": _dc, "hum+noise": _mixture(_hum, _noise), "music+noise": _mixture(_music, _noise),
}


def sound(split: str, kind: str, i: int) -> np.ndarray:
    """The i-th non-speech clip of a kind in a split: (N,) float32 at 16 kHz, 0.5-6 s."""
    if split not in BANK_STREAMS or kind not in KINDS:
        raise ValueError(f"split must be one of {sorted(BANK_STREAMS)} and kind one of {KINDS}")
    rng = np.random.default_rng([BANK_STREAMS[split], zlib.crc32(kind.encode()), i])
    n = int(rng.uniform(0.5, 6.0) * SAMPLE_RATE)
    if kind == "silence":  # digital zeros, or dither at -90 to -60 dBFS
        return np.zeros(n, np.float32) if i % 2 == 0 else (rng.standard_normal(n) * 10 ** (rng.uniform(-90, -60) / 20)).astype(np.float32)
    x = MAKERS[kind](rng, n, i)
    x = x / max(float(np.abs(x).max()), 1e-12) * 10 ** (rng.uniform(-40, -3) / 20)  # peak level
    if rng.random() < 0.15:  # overdriven: 6-20 dB too loud, clipped at full scale
        x = x * 10 ** (rng.uniform(6, 20) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def bank(split: str, n_per_kind: int) -> list[tuple[str, np.ndarray]]:
    """n_per_kind clips of every kind, kind by kind: [(kind, samples (N,) float32 at 16 kHz)]."""
    return [(kind, sound(split, kind, i)) for kind in KINDS for i in range(n_per_kind)]


# ------------------------------------------------------------------------------------------- speech


def questions(split: str, count: int, condition: str) -> list[np.ndarray]:
    """Spoken questions of every synthesizer (a third each, spoken.plan_questions): in training voices on
    fresh validation scenes and renderings ("val"), or in held-out voices on the test split ("test"),
    rendered under `condition` ("clean": the voice alone; "mixed": the training mixture of noise, babble,
    rooms, bands and gain)."""
    from mmdemo.tasks.sort_of_clevr import data as soc
    from mmdemo.tasks.sort_of_clevr import spoken, synthesizers

    samples = soc.generate("val", math.ceil(count / 20)) if split == "val" else soc.test_split()[: math.ceil(count / 20)]
    plan = spoken.plan_questions(samples, split, condition=condition)[:count]
    lines = [spoken.festival_line(u) for u in plan if u.synth == "festival"]
    festival = dict(zip(lines, synthesizers.festival(lines)))  # one Festival process for them all
    return [spoken.render(u, festival)[0] for u in plan]


SPEECH_SOURCES: dict[str, Callable[[str, int], list[np.ndarray]]] = {
    "clean": lambda split, count: questions(split, count, "clean"),
    "mixed": lambda split, count: questions(split, count, "mixed"),
}


# ---------------------------------------------------------------------------------------------- fit


def _rate(refused: int, n: int) -> dict:
    return {"n": n, "refused": refused, "rate": round(refused / n, 4) if n else 0.0}


def refusals(probs: list[np.ndarray], kinds: list[str], cfg: gate.GateConfig) -> dict:
    """Refused counts and shares per kind and overall, from chunk probabilities."""
    refused = [not gate.decide(p, cfg).question for p in probs]
    out = {k: _rate(sum(r for r, kk in zip(refused, kinds) if kk == k), kinds.count(k)) for k in dict.fromkeys(kinds)}
    return {"per_kind": out, "overall": _rate(sum(refused), len(refused))}


def fit_report(speech_clips: list[np.ndarray], nonspeech: list[tuple[str, np.ndarray]],
               max_refusal: float = MAX_REFUSAL) -> tuple[gate.GateConfig, dict]:
    """Choose the gate on validation clips: for each Silero threshold (0.5 first), min_speech_s is the largest
    that refuses at most max_refusal of the speech clips; keep 0.5 unless it refuses less than TARGET_REFUSED of
    the non-speech, else take the threshold that refuses most of it. -> (config, how it was chosen)."""
    if not speech_clips:
        raise ValueError("fit needs speech clips")
    speech_p = [gate.speech_probs(x) for x in speech_clips]
    ns_kinds, ns_p = [k for k, _ in nonspeech], [gate.speech_probs(x) for _, x in nonspeech]
    allowed = min(math.floor(max_refusal * len(speech_p)), len(speech_p) - 1)  # refusals allowed among the speech clips
    tried = []
    for threshold in THRESHOLDS:
        counts = sorted(int(np.count_nonzero(p >= threshold)) for p in speech_p)
        cfg = gate.GateConfig(threshold, round(counts[allowed] * gate.CHUNK_S, 3))
        ns = refusals(ns_p, ns_kinds, cfg)
        tried.append((cfg, ns, refusals(speech_p, ["speech"] * len(speech_p), cfg)["overall"]))
        if threshold == THRESHOLDS[0] and ns["overall"]["rate"] >= TARGET_REFUSED:
            break
    cfg, ns, sp = max(tried, key=lambda c: (c[1]["overall"]["rate"], -c[0].speech_threshold)) if len(tried) > 1 else tried[0]
    report = {
        "rule": f"largest min_speech_s refusing <= {max_refusal:.0%} of clean validation speech; threshold 0.5 unless "
                f"non-speech refusal < {TARGET_REFUSED:.0%}, then the tried threshold refusing most non-speech",
        "speech_refused": sp, "nonspeech_refused": ns, "margin": _margin(speech_p, ns_p, ns_kinds, cfg),
        "thresholds_tried": [{"speech_threshold": c.speech_threshold, "min_speech_s": c.min_speech_s,
                              "nonspeech_refused": n["overall"]["rate"], "speech_refused": s["rate"]} for c, n, s in tried],
    }
    return cfg, report


def fit(speech_clips: list[np.ndarray], nonspeech: list[tuple[str, np.ndarray]]) -> gate.GateConfig:
    """The gate config chosen on these validation clips (see fit_report)."""
    return fit_report(speech_clips, nonspeech)[0]


def check_report(cfg: gate.GateConfig, speech: dict[str, list[np.ndarray]], nonspeech: list[tuple[str, np.ndarray]]) -> dict:
    """Refusals under cfg: non-speech per kind and overall, and each speech source's."""
    probs = {name: [gate.speech_probs(x) for x in clips] for name, clips in speech.items()}
    ns_kinds, ns_p = [k for k, _ in nonspeech], [gate.speech_probs(x) for _, x in nonspeech]
    from mmdemo.tasks.sort_of_clevr.spoken import SYNTHS

    def synth_of(count: int) -> list[str]:  # questions() voices question i with SYNTHS[i % 3]
        return [SYNTHS[i % len(SYNTHS)] for i in range(count)]

    return {"config": {"speech_threshold": cfg.speech_threshold, "min_speech_s": cfg.min_speech_s},
            "nonspeech_refused": refusals(ns_p, ns_kinds, cfg),
            "speech_refused": {name: refusals(p, ["speech"] * len(p), cfg)["overall"] for name, p in probs.items()},
            "speech_refused_by_synth": {name: refusals(p, synth_of(len(p)), cfg)["per_kind"] for name, p in probs.items()},
            "margin": {name: _margin(p, ns_p, ns_kinds, cfg) for name, p in probs.items()}}


def _margin(speech_p: list[np.ndarray], ns_p: list[np.ndarray], ns_kinds: list[str], cfg: gate.GateConfig) -> dict:
    """How far apart the two sides are: speech seconds of the speech clips (low percentiles) and the most
    any non-speech clip of each kind reached."""
    speech_s = [gate.decide(p, cfg).speech_s for p in speech_p]
    ns_s = [gate.decide(p, cfg).speech_s for p in ns_p]
    return {"speech_s": {f"p{q}": round(float(np.percentile(speech_s, q)), 3) for q in (0, 1, 2, 5, 50)} if speech_s else {},
            "nonspeech_max_speech_s": {k: max(s for s, kk in zip(ns_s, ns_kinds) if kk == k) for k in dict.fromkeys(ns_kinds)}}


# ---------------------------------------------------------------------------------------------- CLI


def _print(title: str, report: dict) -> None:
    print(title)
    for kind, r in report["nonspeech_refused"]["per_kind"].items():
        print(f"  {kind:<12} refused {r['refused']:>4}/{r['n']:<4} = {100 * r['rate']:.2f}%")
    r = report["nonspeech_refused"]["overall"]
    print(f"  {'non-speech':<12} refused {r['refused']:>4}/{r['n']:<4} = {100 * r['rate']:.2f}%")
    speech = report["speech_refused"]
    for name, r in (speech.items() if "rate" not in speech else [("speech", speech)]):
        print(f"  {name:<12} refused {r['refused']:>4}/{r['n']:<4} = {100 * r['rate']:.2f}%")
    margins = report["margin"] if "speech_s" not in report["margin"] else {"speech": report["margin"]}
    for name, m in margins.items():
        print(f"  {name} speech seconds: " + ", ".join(f"{q} {v:.3f}" for q, v in m["speech_s"].items()))
    worst = max(m["nonspeech_max_speech_s"].items(), key=lambda kv: kv[1])
    print(f"  most speech seconds in any non-speech clip: {worst[1]:.3f} ({worst[0]})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.tasks.sort_of_clevr.nonspeech", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["fit", "check"], help="fit: choose the gate on val and write it; check: measure it on test")
    p.add_argument("--per-kind", type=int, default=PER_KIND, help="non-speech clips per kind")
    p.add_argument("--speech-count", type=int, default=SPEECH_COUNT, help="speech clips per source")
    p.add_argument("--speech", default=None, help=f"comma-separated speech sources ({', '.join(SPEECH_SOURCES)}); "
                   "default: clean")
    p.add_argument("--config", default=str(gate.DEFAULT_PATH), help="gate.json to write (fit) or read (check)")
    p.add_argument("--dry-run", action="store_true", help="fit: print the choice without writing gate.json")
    p.add_argument("--write", action="store_true", help="check: also record the test figures in gate.json (under checked)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    names = (args.speech or "clean").split(",")
    unknown = sorted(set(names) - set(SPEECH_SOURCES))
    if unknown:
        p.error(f"unknown speech sources {unknown}; known: {sorted(SPEECH_SOURCES)}")
    split = "val" if args.command == "fit" else "test"
    start = time.perf_counter()
    nonspeech = bank(split, args.per_kind)
    speech = {name: SPEECH_SOURCES[name](split, args.speech_count) for name in names}
    if args.command == "fit":
        cfg, report = fit_report([x for clips in speech.values() for x in clips], nonspeech)
        report = {"config": {"speech_threshold": cfg.speech_threshold, "min_speech_s": cfg.min_speech_s},
                  "banks": {"nonspeech": f"bank('val', {args.per_kind}): {len(KINDS)} kinds", "speech": names},
                  **report}
        if not args.dry_run:
            cfg.to_json(args.config, chosen={k: v for k, v in report.items() if k != "config"})
            report["written"] = str(Path(args.config))
        title = f"fit on val: speech_threshold {cfg.speech_threshold}, min_speech_s {cfg.min_speech_s}"
    else:
        cfg = gate.GateConfig.from_json(args.config)
        report = check_report(cfg, speech, nonspeech)
        report["banks"] = {"nonspeech": f"bank('test', {args.per_kind}): {len(KINDS)} kinds", "speech": names}
        title = f"check on test: speech_threshold {cfg.speech_threshold}, min_speech_s {cfg.min_speech_s}"
        if args.write:  # beside the choice: what the test bank and the held-out voices say of it
            saved = json.loads(Path(args.config).read_text())
            saved["checked"] = {**report, "command": "python -m mmdemo.tasks.sort_of_clevr.nonspeech check --write " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in (("speech", ",".join(names)), ("per_kind", args.per_kind), ("speech_count", args.speech_count)))}
            Path(args.config).write_text(json.dumps(saved, indent=2) + "\n")
    report["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(title, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
