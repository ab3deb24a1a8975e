"""What a spoken model heard: the heard head's reading at the last step (the colour named and the question's
kind with its side), with probabilities, and whether the colour is sure enough to answer.

The heard head (a linear layer on the RNN states) is trained to name the colour at every step from the one
that has heard the colour word, and the kind at the last step (tasks/sort_of_clevr/train.py heard_loss), so
its last step says what the model took the question to be: a mishearing shows as one. The threshold under
which the colour counts as unsure is the checkpoint's (hearing.json, chosen on validation voices).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmdemo.tasks.sort_of_clevr import data as soc

KINDS = ("shape", "left", "right", "top", "bottom", "closest", "furthest", "count")
HEARD = (*soc.COLOURS, *KINDS)  # the heard head's classes, in order
OPPOSITE = {"left": "right", "top": "bottom"}
HEARING_FILE = "hearing.json"  # in a spoken checkpoint: {"colour_threshold": p, "chosen_on": ...}
UNSURE = ("I'm not sure which colour I heard ({guess}?, {p:.0f}%). Please say the question again, "
          "clearly and close to the microphone.")


def heard_kind(subtype: str, negate: bool) -> str:
    """The question kind the heard head names: the subtype, or its opposite side for a negated wording."""
    return OPPOSITE[subtype] if negate and subtype in OPPOSITE else subtype


@dataclass
class Hearing:
    """What the model heard (Prediction.hearing): the gate's verdict and the heard head at the last step."""

    question: bool  # the voice-activity gate heard enough speech for a question (mmdemo.gate)
    speech_seconds: float  # speech the gate heard
    colour: str = ""  # the colour the heard head names ("" when no question was heard)
    colour_prob: float = 0.0
    kind: str = ""  # shape | left | right | top | bottom | closest | furthest | count
    kind_prob: float = 0.0
    sure: bool = False  # a question was heard and colour_prob reached the checkpoint's threshold
    colours: dict[str, float] | None = None  # every colour's probability
    kinds: dict[str, float] | None = None  # every kind's probability


def read_heard(last: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """The heard head's logits at the last step (len(HEARD),) -> (colour probabilities, kind probabilities)."""
    colours = len(soc.COLOURS)

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max())
        return e / e.sum()

    return (dict(zip(HEARD[:colours], softmax(last[:colours]).tolist())), dict(zip(KINDS, softmax(last[colours:]).tolist())))


def colour_threshold(folder: Path) -> float | None:
    """The checkpoint's unsure-colour threshold, or None when it has none (then every colour counts as sure)."""
    path = Path(folder) / HEARING_FILE
    return float(json.loads(path.read_text())["colour_threshold"]) if path.is_file() else None


def hearing(question: bool, speech_seconds: float, last: np.ndarray | None, threshold: float | None) -> Hearing:
    """The Hearing of one recording: the gate's verdict and, when the model has a heard head, its reading."""
    out = Hearing(question, round(float(speech_seconds), 3))
    if last is None:
        out.sure = question
        return out
    colours, kinds = read_heard(last)
    out.colours, out.kinds = colours, kinds
    out.colour, out.kind = max(colours, key=colours.get), max(kinds, key=kinds.get)
    out.colour_prob, out.kind_prob = colours[out.colour], kinds[out.kind]
    out.sure = question and (threshold is None or out.colour_prob >= threshold)
    return out


# ------------------------------------------------------------------------------------ the threshold

FIT_IMAGES = 50  # validation scenes (20 questions each) the threshold is chosen on
RIGHT_FLAGGED = 0.02  # the share of rightly heard validation colours the threshold may call unsure


def choose_threshold(colour_probs: np.ndarray, heard_right: np.ndarray) -> float:
    """The RIGHT_FLAGGED quantile of the heard colour's probability among rightly heard colours (0 if none)."""
    right = colour_probs[heard_right]
    return float(np.quantile(right, RIGHT_FLAGGED)) if right.size else 0.0


def fit(folder: Path, spoken_data: str, workers: int = 0, progress: bool = True) -> dict:
    """Choose the unsure-colour threshold on validation questions (the "val" split: fresh questions and
    renderings in training voices, never the held-out ones): the largest threshold that calls at most
    RIGHT_FLAGGED of the rightly heard colours unsure. Writes hearing.json; returns what it wrote."""
    import torch

    from mmdemo.checkpoint import load_checkpoint
    from mmdemo.tasks.sort_of_clevr.evaluate import predict_samples, spoken_test_pool

    model, _ = load_checkpoint(folder, torch.device("cpu"))
    if model.cfg.question_input != "audio" or model.heard is None:
        raise ValueError(f"{folder} is not a spoken checkpoint with a heard head")
    samples = soc.generate("val", FIT_IMAGES)
    pool = spoken_test_pool(samples, model, spoken_data, workers, progress, split="val")
    answered = list(predict_samples(model, samples, torch.device("cpu"), spoken=pool))
    probs, right = [], []
    for a in answered:
        colours, _ = read_heard(a.heard)
        probs.append(colours[max(colours, key=colours.get)])
        right.append(max(colours, key=colours.get) == a.question.colour)
    probs_np, right_np = np.array(probs), np.array(right)
    threshold = choose_threshold(probs_np, right_np)
    unsure = probs_np < threshold
    answers = np.array([a.prediction == a.question.answer for a in answered])
    report = {
        "colour_threshold": round(threshold, 4),
        "chosen_on": {
            "split": f"val: {len(answered)} questions on {FIT_IMAGES} validation scenes, fresh renderings in training voices of every synthesizer",
            "rule": f"the {RIGHT_FLAGGED:.0%} quantile of the heard colour's probability among rightly heard colours",
            "colour_heard_right": round(float(right_np.mean()), 4),
            "unsure": round(float(unsure.mean()), 4),
            "misheard_caught": round(float(unsure[~right_np].mean()), 4) if (~right_np).any() else None,
            "accuracy_all": round(float(answers.mean()), 4),
            "accuracy_when_sure": round(float(answers[~unsure].mean()), 4) if (~unsure).any() else None,
        },
        "command": "python -m mmdemo.tasks.sort_of_clevr.hearing fit --checkpoint " + str(folder),
    }
    (Path(folder) / HEARING_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m mmdemo.tasks.sort_of_clevr.hearing", description="Choose a spoken checkpoint's unsure-colour threshold on validation voices (writes hearing.json).")
    p.add_argument("command", choices=("fit",))
    p.add_argument("--checkpoint", default="checkpoints/sort-of-clevr/spoken", help="spoken checkpoint folder (default %(default)s)")
    p.add_argument("--spoken-data", default="data/spoken", help="utterance cache (default %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="synthesis processes (default: one per CPU)")
    args = p.parse_args(argv)
    try:
        print(json.dumps(fit(Path(args.checkpoint), args.spoken_data, args.workers, sys.stderr.isatty()), indent=2))
    except (ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
