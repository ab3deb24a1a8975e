"""What a spoken model heard: the heard head's reading at the last step (the colour named and the question's
kind with its side), with probabilities, and whether both are sure enough to answer.

The heard head (a linear layer on the RNN states) is trained to name the colour at every step from the one
that has heard the colour word, and the kind at the last step (tasks/sort_of_clevr/train.py heard_loss), so
its last step says what the model took the question to be: a mishearing shows as one. The thresholds under
which the colour, or the kind, counts as unsure are the checkpoint's (hearing.json, chosen on validation voices).
A sentence that is not one of the task's questions can be heard as a colour at 99% ("what is the weather like
today" -> red), and one that names a colour ("my car is red") as "what shape is it" at 91-100%: the heard-scope
detector (heard_scope.py, on everything the model heard) gives the probability that it was a task question at
all, with its own threshold (heard-scope.json), checked first.
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
HEARING_FILE = "hearing.json"  # in a spoken checkpoint: {"colour_threshold": p, "kind_threshold": q, "chosen_on": ...}
KIND_WORDS = {"shape": "what shape is it", "left": "is it on the left", "right": "is it on the right", "top": "is it in the top half",
              "bottom": "is it in the bottom half", "closest": "the shape of the object closest to it",
              "furthest": "the shape of the object furthest from it", "count": "how many objects share its shape"}
REPEAT = "Please say the question again, clearly and close to the microphone."
UNSURE = "I'm not sure which colour I heard ({guess}?, {p:.0f}%). " + REPEAT
UNSURE_KIND = "I'm not sure what you asked about the {colour} object (\"{guess}\"?, {p:.0f}%). " + REPEAT
UNSURE_SCOPE = ("That did not sound like one of the six kinds of question ({p:.0f}% sure it was one). Ask about one coloured "
                "object, for example \"What shape is the red object?\" or \"Is the blue object on the left?\"")


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
    scope_prob: float | None = None  # the heard-scope detector: probability it was a task question (None: no detector)
    sure: bool = False  # a question was heard and scope_prob, colour_prob and kind_prob reached the checkpoint's thresholds
    doubt: str = ""  # what is unsure when a question was heard but not sure: "scope" | "colour" | "kind" (checked in that order) | ""
    colours: dict[str, float] | None = None  # every colour's probability
    kinds: dict[str, float] | None = None  # every kind's probability


def read_heard(last: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """The heard head's logits at the last step (len(HEARD),) -> (colour probabilities, kind probabilities)."""
    colours = len(soc.COLOURS)

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max())
        return e / e.sum()

    return (dict(zip(HEARD[:colours], softmax(last[:colours]).tolist())), dict(zip(KINDS, softmax(last[colours:]).tolist())))


@dataclass(frozen=True)
class Thresholds:
    """The probabilities under which the heard colour, the heard kind and the heard scope count as unsure (None: always sure)."""

    colour: float | None = None
    kind: float | None = None
    scope: float | None = None

    @classmethod
    def of(cls, folder: Path) -> Thresholds:
        """The checkpoint's thresholds (hearing.json; the scope's from heard-scope.json), None where it has no such file."""
        from mmdemo.tasks.sort_of_clevr.heard_scope import REPORT

        path, scope_path = Path(folder) / HEARING_FILE, Path(folder) / REPORT
        scope = float(json.loads(scope_path.read_text())["threshold"]) if scope_path.is_file() else None
        if not path.is_file():
            return cls(scope=scope)
        report = json.loads(path.read_text())
        return cls(float(report["colour_threshold"]), float(report["kind_threshold"]) if "kind_threshold" in report else None, scope)

    def doubt(self, colour_prob: float, kind_prob: float, scope_prob: float | None = None) -> str:
        """"scope", "colour" or "kind" when that probability is under its threshold (checked in that order), else ""."""
        if self.scope is not None and scope_prob is not None and scope_prob < self.scope:
            return "scope"
        if self.colour is not None and colour_prob < self.colour:
            return "colour"
        return "kind" if self.kind is not None and kind_prob < self.kind else ""


NO_THRESHOLDS = Thresholds()  # every reading counts as sure (a checkpoint without hearing.json)


def hearing(question: bool, speech_seconds: float, last: np.ndarray | None, thresholds: Thresholds = NO_THRESHOLDS,
            scope_prob: float | None = None) -> Hearing:
    """The Hearing of one recording: the gate's verdict and, when the model has a heard head, its reading (and the
    heard-scope detector's probability when the checkpoint has one)."""
    out = Hearing(question, round(float(speech_seconds), 3), scope_prob=None if scope_prob is None else round(float(scope_prob), 4))
    if last is None:
        out.sure = question
        return out
    colours, kinds = read_heard(last)
    out.colours, out.kinds = colours, kinds
    out.colour, out.kind = max(colours, key=colours.get), max(kinds, key=kinds.get)
    out.colour_prob, out.kind_prob = colours[out.colour], kinds[out.kind]
    out.doubt = thresholds.doubt(out.colour_prob, out.kind_prob, scope_prob) if question else ""
    out.sure = question and not out.doubt
    return out


def unsure_notice(h: Hearing) -> str:
    """What the app says when a heard question is unsure: which part, its best guess and probability, and to repeat."""
    if h.doubt == "scope":
        return UNSURE_SCOPE.format(p=100 * (h.scope_prob or 0.0))
    if h.doubt == "colour":
        return UNSURE.format(guess=h.colour, p=100 * h.colour_prob)
    return UNSURE_KIND.format(colour=h.colour, guess=KIND_WORDS[h.kind], p=100 * h.kind_prob) if h.doubt == "kind" else ""


# ------------------------------------------------------------------------------------ the thresholds

FIT_IMAGES = 50  # validation scenes (20 questions each) the thresholds are chosen on
RIGHT_FLAGGED = 0.02  # the share of rightly heard validation questions the two thresholds together may call unsure
PART_FLAGGED = RIGHT_FLAGGED / 2  # each threshold's share: the colour's among rightly heard colours, the kind's among kinds


def choose_threshold(probs: np.ndarray, heard_right: np.ndarray, share: float = PART_FLAGGED) -> float:
    """The `share` quantile of the heard class's probability among rightly heard ones (0 if none)."""
    right = probs[heard_right]
    return float(np.quantile(right, share)) if right.size else 0.0


def fit(folder: Path, spoken_data: str, workers: int = 0, progress: bool = True) -> dict:
    """Choose the unsure-colour and unsure-kind thresholds on validation questions (the "val" split: fresh
    questions and renderings in training voices, never the held-out ones), each by the same rule: the largest
    threshold that calls at most PART_FLAGGED of the rightly heard colours (kinds) unsure, so that together
    they call at most RIGHT_FLAGGED of the rightly heard questions unsure. Writes hearing.json; returns it."""
    import torch

    from mmdemo.checkpoint import load_checkpoint
    from mmdemo.tasks.sort_of_clevr.evaluate import predict_samples, spoken_test_pool

    model, _ = load_checkpoint(folder, torch.device("cpu"))
    if model.cfg.question_input != "audio" or model.heard is None:
        raise ValueError(f"{folder} is not a spoken checkpoint with a heard head")
    samples = soc.generate("val", FIT_IMAGES)
    pool = spoken_test_pool(samples, model, spoken_data, workers, progress, split="val")
    answered = list(predict_samples(model, samples, torch.device("cpu"), spoken=pool))
    colour_p, colour_right, kind_p, kind_right = [], [], [], []
    for a, u in zip(answered, pool.utterances):
        colours, kinds = read_heard(a.heard)
        colour, kind = max(colours, key=colours.get), max(kinds, key=kinds.get)
        colour_p.append(colours[colour])
        colour_right.append(colour == a.question.colour)
        kind_p.append(kinds[kind])
        kind_right.append(kind == heard_kind(a.question.subtype, u.negate))
    colour_p_np, colour_right_np = np.array(colour_p), np.array(colour_right)
    kind_p_np, kind_right_np = np.array(kind_p), np.array(kind_right)
    thresholds = Thresholds(choose_threshold(colour_p_np, colour_right_np), choose_threshold(kind_p_np, kind_right_np))
    colour_unsure, kind_unsure = colour_p_np < thresholds.colour, kind_p_np < thresholds.kind
    unsure = colour_unsure | kind_unsure
    misheard = ~(colour_right_np & kind_right_np)
    answers = np.array([a.prediction == a.question.answer for a in answered])

    def share(flags: np.ndarray) -> float | None:
        return round(float(flags.mean()), 4) if flags.size else None

    report = {
        "colour_threshold": round(thresholds.colour, 4),
        "kind_threshold": round(thresholds.kind, 4),
        "chosen_on": {
            "split": f"val: {len(answered)} questions on {FIT_IMAGES} validation scenes, fresh renderings in training voices of every synthesizer",
            "rule": f"the {PART_FLAGGED:.0%} quantile of the heard colour's (kind's) probability among rightly heard colours (kinds): together at most {RIGHT_FLAGGED:.0%} of rightly heard questions",
            "right_flagged": share(unsure[~misheard]),
            "colour_heard_right": share(colour_right_np),
            "kind_heard_right": share(kind_right_np),
            "unsure": share(unsure),
            "unsure_colour": share(colour_unsure),
            "unsure_kind": share(kind_unsure),
            "misheard_caught": share(unsure[misheard]),
            "accuracy_all": share(answers),
            "accuracy_when_sure": share(answers[~unsure]),
        },
        "command": "python -m mmdemo.tasks.sort_of_clevr.hearing fit --checkpoint " + str(folder),
    }
    (Path(folder) / HEARING_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def fit_main(prog: str, description: str, fit_fn, argv: list[str] | None = None) -> int:
    """The command line of a choice fitted on a spoken checkpoint's validation voices (`fit --checkpoint DIR
    --spoken-data DIR --workers N`): prints fit_fn's report; a bad checkpoint is one line on stderr and exit 2."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("command", choices=("fit",))
    p.add_argument("--checkpoint", default="checkpoints/sort-of-clevr/spoken", help="spoken checkpoint folder (default %(default)s)")
    p.add_argument("--spoken-data", default="data/spoken", help="utterance cache (default %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="synthesis processes (default: one per CPU)")
    args = p.parse_args(argv)
    try:
        if not (Path(args.checkpoint) / "config.json").is_file():
            raise ValueError(f"{args.checkpoint} is not a checkpoint folder (no config.json)")
        print(json.dumps(fit_fn(Path(args.checkpoint), args.spoken_data, args.workers, sys.stderr.isatty()), indent=2))
    except (ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return fit_main("python -m mmdemo.tasks.sort_of_clevr.hearing",
                    "Choose a spoken checkpoint's unsure-colour and unsure-kind thresholds on validation voices (writes hearing.json).", fit, argv)


if __name__ == "__main__":
    raise SystemExit(main())
