"""Exact outputs of every shipped checkpoint on fixed inputs, as JSON: the check that a refactor changed nothing.

    python -m mmdemo.experiments.fingerprint --out /tmp/before.json        # on the old tree
    python -m mmdemo.experiments.fingerprint --compare /tmp/before.json    # on the new tree: exit 1 on any difference

Each checkpoint folder under checkpoints/ is loaded through the public API (`mmdemo.load_predictor`) and asked
a few fixed questions: two generated Sort-of-CLEVR-NL test scenes for the scene models, two of the bundled
example photos for the photo models (a spoken checkpoint gets the shipped example recordings). Every float
is recorded with float.hex(), so "the same" means bit-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from mmdemo import load_predictor
from mmdemo.checkpoint import ROOT, find_checkpoints

QUESTIONS = (
    "What shape is the red object?",
    "How many objects have the same shape as the blue object?",
    "Is the green object on the left side of the image?",
)
PHOTO_QUESTIONS = ("a cat", "a cup of coffee", "a rocket on its launch pad")
SPOKEN = Path(__file__).resolve().parents[2] / "examples" / "spoken"


def _hex(value: Any) -> Any:
    """Every float (all the way down) -> its exact float.hex() string."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, dict):
        return {k: _hex(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_hex(v) for v in value]
    return value


def _inputs(task: str, audio: bool) -> list[tuple[str, Any, Any]]:
    """(label, image, question) triples for one kind of checkpoint."""
    if task == "match":
        from mmdemo.photos import gallery

        photos = {p.name: p.pixels for p in gallery()}
        return [(f"{name}|{q}", photos[name], q) for name in ("chelsea", "coffee") for q in PHOTO_QUESTIONS]
    from mmdemo.tasks.sort_of_clevr import data as soc

    scenes = soc.generate("test", 2, seed=0)
    if audio:
        files = sorted(SPOKEN.glob("*.ogg"))[:2]
        return [(f"scene{s.index}|{f.name}", s.image, str(f)) for s in scenes for f in files]
    return [(f"scene{s.index}|{q}", s.image, q) for s in scenes for q in QUESTIONS]


def fingerprint(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """{checkpoint name: {input label: exact prediction}} for every checkpoint under root."""
    out: dict[str, dict[str, Any]] = {}
    for folder in find_checkpoints(root):
        predictor = load_predictor(str(folder), device="cpu")
        rows = {}
        for label, image, question in _inputs(predictor.cfg.task, predictor.cfg.question_input == "audio"):
            pred = _hex(predictor.predict(image, question).to_dict())
            pred["sha256"] = hashlib.sha256(json.dumps(pred, sort_keys=True).encode()).hexdigest()
            rows[label] = pred
        out[str(folder.relative_to(root))] = rows
        print(f"{folder.relative_to(root)}: {len(rows)} inputs", file=sys.stderr)
    return out


def compare(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    """Every difference between two fingerprints, as lines (empty: bit-identical)."""
    problems = [f"{name}: missing now" for name in before if name not in after]
    problems += [f"{name}: new checkpoint (not compared)" for name in after if name not in before]
    for name in before.keys() & after.keys():
        for label, pred in before[name].items():
            now = after[name].get(label)
            if now != pred:
                fields = sorted(k for k in pred if now is None or now.get(k) != pred[k])
                problems.append(f"{name} / {label}: differs in {', '.join(fields)}")
    return sorted(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the fingerprint JSON here")
    parser.add_argument("--compare", type=Path, help="compare with a fingerprint JSON written earlier; exit 1 on any difference")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the thread count changes the order of float sums: one thread, the same bits every run
    now = fingerprint()
    if args.out:
        args.out.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        problems = compare(before, now)
        pairs = sum(len(v) for k, v in before.items() if k in now)
        for line in problems:
            print(line)
        print(f"{len(before)} checkpoints, {pairs} checkpoint x input pairs compared: "
              + ("all bit-identical" if not problems else f"{len(problems)} differences"))
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
