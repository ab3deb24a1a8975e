"""Question scope: is a typed question one the Sort-of-CLEVR models were trained to answer?

Every typed Sort-of-CLEVR model answers with one of its ten labels whatever it is asked, so the Prediction
says whether the question is in scope (`in_domain`, `notice`). Two measured parts decide:
- **readable**: a question whose letters are mostly outside the Latin alphabet, or whose word pieces are
  mostly unknown to the MiniLM tokenizer, is unreadable for the model (it reads English);
- **in scope**: a small classifier on the frozen MiniLM's sentence vector (the mean of its states, unit
  length: how all-MiniLM-L6-v2 is meant to be used). In scope: the generator's training wordings, with the
  same frames, surface noise and dropped words the models train on; out of scope: scope_data.TRAIN_OUT.
  Its threshold is chosen on scope_data's validation banks (VAL_WORDINGS, VAL_OUT); it is measured on the
  held-out wordings (data.HELDOUT_WORDINGS) and scope_data.TEST_OUT, which choose nothing.

    python -m mmdemo.tasks.sort_of_clevr.scope train      # fits, picks the threshold, measures, writes SCOPE_DIR
    python -m mmdemo.tasks.sort_of_clevr.scope check "What colour is the biggest object?"

The weights are a safetensors file and the threshold and measurements a JSON file in SCOPE_DIR; the app,
the CLI and the client read the same field through Predictor.predict.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mmdemo.checkpoint import ROOT
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import scope_data
from mmdemo.text import sentence_vectors

SCOPE_DIR = ROOT / "sort-of-clevr" / "question-scope"
WEIGHTS, REPORT = "scope.safetensors", "scope.json"
MAX_NON_LATIN = 0.5  # share of letters outside the Latin script above which a question is unreadable
MAX_UNKNOWN = 0.3  # share of [UNK] word pieces above which a question is unreadable
VAL_MAX_FLAGGED = 0.01  # the threshold flags at most this share of the validation rewordings
KINDS = (  # the six kinds in plain words, with one example each (the app lists them)
    ("shape", "What shape is the red object?"),
    ("left or right", "Is the blue object on the left side of the image?"),
    ("top or bottom", "Is the green object in the top half of the image?"),
    ("closest", "What shape is the object closest to the yellow object?"),
    ("furthest", "What shape is the object furthest from the gray object?"),
    ("count", "How many objects have the same shape as the orange object?"),
)
UNREADABLE = ("The model reads English questions about the scene, and it cannot read this one: ask one of the six "
              "kinds in English (the list is under the question box).")
OUT_OF_SCOPE = ("This is not one of the six kinds of question the model was trained on (shape, left or right, top or "
                "bottom, closest, furthest, count about one of the six colours), so its answer means nothing here.")


@dataclass(frozen=True)
class Scope:
    """What the detector says about one question."""

    in_domain: bool
    score: float  # P(in scope) from the classifier; 0.0 for an unreadable question
    readable: bool
    notice: str  # "" when in scope


class ScopeNet(nn.Module):
    """MiniLM sentence vector (384) -> logit of "in scope"."""

    def __init__(self, dim: int = 384, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def readable(text: str) -> bool:
    """False for text whose letters are mostly not Latin, or whose word pieces are mostly [UNK]."""
    from mmdemo.text import clean_text, load_tokenizer

    text = clean_text(text)
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return False
    non_latin = sum("LATIN" not in unicodedata.name(ch, "") for ch in letters) / len(letters)
    if non_latin > MAX_NON_LATIN:
        return False
    tok = load_tokenizer()
    pieces = tok.tokenize(text)
    return not pieces or sum(p == tok.unk_token for p in pieces) / len(pieces) <= MAX_UNKNOWN


class ScopeDetector:
    """The trained classifier and its threshold, from SCOPE_DIR."""

    def __init__(self, net: ScopeNet, threshold: float) -> None:
        self.net, self.threshold = net.eval(), threshold

    @classmethod
    def load(cls, folder: Path = SCOPE_DIR) -> ScopeDetector:
        from safetensors.torch import load_file

        net = ScopeNet()
        net.load_state_dict(load_file(str(folder / WEIGHTS)))
        report = json.loads((folder / REPORT).read_text())
        return cls(net, float(report["threshold"]))

    @torch.inference_mode()
    def scores(self, texts: list[str]) -> np.ndarray:
        """P(in scope) per text, from the classifier alone."""
        return torch.sigmoid(self.net(sentence_vectors(texts))).numpy()

    def check(self, text: str) -> Scope:
        if not readable(text):
            return Scope(False, 0.0, False, UNREADABLE)
        score = float(self.scores([text])[0])
        ok = score >= self.threshold
        return Scope(ok, round(score, 4), True, "" if ok else OUT_OF_SCOPE)

    def flags(self, texts: list[str]) -> np.ndarray:
        """True where a text is out of scope (unreadable, or under the threshold)."""
        scores = self.scores(texts)
        return np.array([not readable(t) or s < self.threshold for t, s in zip(texts, scores)], dtype=bool)


@lru_cache(maxsize=1)
def detector() -> ScopeDetector:
    """The shipped detector, loaded once per process."""
    return ScopeDetector.load()


# ------------------------------------------------------------------------------------------ the banks


def _fill(template: str, colour: str, other: str, noun: str = "object") -> str:
    return template.format(c=colour, x=other, o=noun)


def expand(bank: dict[str, list[str]], nouns: tuple[str, ...] = ("object",)) -> dict[str, list[str]]:
    """Each template with every colour (and another colour for {x}) and noun; plain sentences once."""
    colours = list(soc.COLOURS)
    out: dict[str, list[str]] = {}
    for name, templates in bank.items():
        rows: list[str] = []
        for t in templates:
            if "{c}" in t or "{o}" in t:
                rows += [_fill(t, c, colours[(i + 1) % len(colours)], o) for i, c in enumerate(colours) for o in nouns]
            else:
                rows.append(t)
        out[name] = list(dict.fromkeys(rows))
    return out


def training_questions(n: int, seed: int) -> list[str]:
    """n questions exactly as the typed default trains on them (train wording, frames 0.25, dropped words 0.2)."""
    rng = np.random.default_rng(seed)
    subtypes = soc.NONREL + soc.REL
    colours = list(soc.COLOURS)
    return [soc.question_text(subtypes[i % 6], colours[int(rng.integers(6))], rng, "train", 0.25, 0.2)[0] for i in range(n)]


def heldout_questions() -> dict[str, list[str]]:
    """The held-out rewordings of each kind, with every colour (the test's in-scope side)."""
    return {kind: [t.format(c=c, o="object") for t, _ in rows for c in soc.COLOURS] for kind, rows in soc.HELDOUT_WORDINGS.items()}


def _variants(texts: list[str], rng: np.random.Generator) -> list[str]:
    """Case and punctuation changes of out-of-scope sentences (so the classifier cannot key on them)."""
    out = []
    for t in texts:
        out += [t, t.lower(), t.upper() if rng.random() < 0.3 else t.capitalize(), t.rstrip("?.!") + pick_end(rng)]
    return out


def pick_end(rng: np.random.Generator) -> str:
    return ("", "?", "??", ".", "!")[int(rng.integers(5))]


def fit(seed: int = 0, steps: int = 400) -> tuple[ScopeNet, dict]:
    """Train the classifier, choose the threshold on validation, measure on the test banks."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    pos = list(dict.fromkeys(training_questions(6000, seed)))
    # The out-of-scope side takes every noun the training questions use, so no noun alone says "in scope".
    nouns = tuple(dict.fromkeys(soc.NOUNS))
    neg = list(dict.fromkeys(_variants([s for rows in expand(scope_data.TRAIN_OUT, nouns).values() for s in rows], rng)))
    x = torch.cat([sentence_vectors(pos), sentence_vectors(neg)])
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    weight = torch.where(y > 0, 0.5 / len(pos), 0.5 / len(neg))  # both sides count the same
    net = ScopeNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        loss = (nn.functional.binary_cross_entropy_with_logits(net(x), y, reduction="none") * weight).sum()
        loss.backward()
        opt.step()
    net.eval()
    detector_ = ScopeDetector(net, 0.5)
    val_in = [s for rows in expand({k: v for k, v in scope_data.VAL_WORDINGS.items()}).values() for s in rows]
    val_scores = detector_.scores(val_in)
    readable_val = np.array([readable(t) for t in val_in])
    # The highest threshold that flags at most VAL_MAX_FLAGGED of the validation rewordings (readable ones).
    ranked = np.sort(val_scores[readable_val])
    k = int(np.floor(VAL_MAX_FLAGGED * len(ranked)))
    detector_.threshold = float(ranked[k]) if len(ranked) else 0.5  # flags the k scores strictly below it
    report = {
        "threshold": round(detector_.threshold, 6),
        "chosen_on": "validation: scope_data.VAL_WORDINGS (in scope) with at most 1% flagged",
        "train_in_scope": len(pos),
        "train_out_of_scope": len(neg),
        "seconds": round(time.perf_counter() - t0, 1),
        "validation": measure(detector_, expand_val_in(), expand(scope_data.VAL_OUT)),
        "test": measure(detector_, heldout_questions(), expand(scope_data.TEST_OUT)),
        "fresh": measure(detector_, {}, expand(scope_data.FRESH_OUT)),
        "canonical": measure(detector_, {k: [t.format(c=c) for c in soc.COLOURS] for k, t in soc.CANONICAL.items()}, {}),
    }
    return net, report


def expand_val_in() -> dict[str, list[str]]:
    return expand(scope_data.VAL_WORDINGS)


def measure(det: ScopeDetector, in_scope: dict[str, list[str]], out_scope: dict[str, list[str]]) -> dict:
    """Share flagged per kind (in scope: should be ~0) and per category (out of scope: should be ~1)."""
    res: dict[str, dict] = {"in_scope_flagged": {}, "out_of_scope_flagged": {}}
    all_in, all_out = [], []
    for kind, texts in in_scope.items():
        f = det.flags(texts)
        all_in.append(f)
        res["in_scope_flagged"][kind] = round(float(f.mean()), 4)
    for cat, texts in out_scope.items():
        f = det.flags(texts)
        all_out.append(f)
        res["out_of_scope_flagged"][cat] = round(float(f.mean()), 4)
    for name, parts in (("in_scope_flagged_all", all_in), ("out_of_scope_flagged_all", all_out)):
        if parts:
            res[name] = round(float(np.concatenate(parts).mean()), 4)
    res["in_scope_n"], res["out_of_scope_n"] = int(sum(map(len, all_in))), int(sum(map(len, all_out)))
    return res


def save(net: ScopeNet, report: dict, folder: Path = SCOPE_DIR) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / WEIGHTS))
    (folder / REPORT).write_text(json.dumps(report, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.tasks.sort_of_clevr.scope", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="fit, choose the threshold on validation, measure on the test banks, write")
    t.add_argument("--out", type=Path, default=SCOPE_DIR)
    t.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("check", help="what the shipped detector says about questions")
    c.add_argument("questions", nargs="+")
    args = p.parse_args(argv)
    if args.cmd == "train":
        net, report = fit(args.seed)
        save(net, report, args.out)
        print(json.dumps(report, indent=2))
        return 0
    det = detector()
    for q in args.questions:
        print(json.dumps({"question": q, **det.check(q).__dict__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
