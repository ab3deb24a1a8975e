"""How much of the spoken training pool is silence before the first word and after the last, and how many RNN
steps a cap on each would save: the lever docs/SPOKEN.md ("Next") names for training time.

    python -m mmdemo.experiments.pool_silence [--utterances 32000] [--seed 0] [--data data/spoken] [--json]

Reads the cached training pool (the plan the train command would use; what is not cached yet is voiced first)
and its word boundaries. A step's cost is about the same wherever it falls (a batch runs each step only on the
questions still being heard), so the share of frames saved is the share of step work saved.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from mmdemo.config import ModelConfig, spoken_defaults
from mmdemo.tasks.sort_of_clevr import speech

CAPS_S = (0.2, 0.3, 0.4)  # the caps on lead-in and on trailing silence, each, in seconds


def silence(words: list[list[speech.Word]], seconds: np.ndarray, caps: tuple[float, ...] = CAPS_S) -> dict:
    """Mean length, lead-in (before the first word) and trail (after the last), the silent share of all the
    audio, and per cap the share of it a cut of lead-in and trail to at most `cap` seconds each would remove.
    Utterances without words are left out."""
    kept = [(ws, float(t)) for ws, t in zip(words, seconds) if ws]
    if not kept:
        raise ValueError("no utterance with word boundaries")
    total = np.array([t for _, t in kept])
    lead = np.array([ws[0].start for ws, _ in kept])
    trail = np.array([max(0.0, t - ws[-1].end) for ws, t in kept])
    return {
        "utterances": len(kept),
        "mean_seconds": round(float(total.mean()), 3),
        "mean_lead_s": round(float(lead.mean()), 3),
        "mean_trail_s": round(float(trail.mean()), 3),
        "silent_share": round(float((lead + trail).sum() / total.sum()), 4),
        "saved_share": {f"{cap:g}": round(float((np.maximum(0.0, lead - cap) + np.maximum(0.0, trail - cap)).sum() / total.sum()), 4)
                        for cap in caps},
    }


def main(argv: list[str] | None = None) -> int:
    from mmdemo.tasks.sort_of_clevr import spoken

    ap = argparse.ArgumentParser(prog="python -m mmdemo.experiments.pool_silence", description=__doc__.split("\n\n")[0])
    ap.add_argument("--utterances", type=int, default=spoken_defaults()["spoken_utterances"], help="the pool's size (default: the spoken preset's)")
    ap.add_argument("--seed", type=int, default=0, help="the pool's seed (the train command's --seed)")
    ap.add_argument("--data", default="data/spoken", help="the spoken cache folder (the train command's --spoken-data)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.utterances < 1:
        sys.stderr.write("pool_silence: --utterances must be at least 1\n")
        return 2
    plan = spoken.plan_train(args.utterances, args.seed)
    settings = spoken.feature_settings(ModelConfig(question_input="audio"))
    spoken.synthesize_missing(plan, args.data, "train", settings, progress=False)
    spans = spoken.read_spans(args.data, "train", plan, settings)
    report = silence([words for words, _ in spans], np.array([frames for _, frames in spans]) * settings[2] / 1000.0)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['utterances']} utterances, {report['mean_seconds']} s on average: lead-in {report['mean_lead_s']} s, "
          f"trail {report['mean_trail_s']} s ({100 * report['silent_share']:.1f}% of the audio)")
    for cap, share in report["saved_share"].items():
        print(f"lead-in and trail cut to {cap} s each: {100 * share:.1f}% fewer steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
