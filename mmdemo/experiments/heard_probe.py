"""What a spoken checkpoint's heard head says it heard, on the test split in held-out voices.

    python -m mmdemo.experiments.heard_probe [--checkpoint DIR] [--images 50] [--json]

The heard head (training only; docs/SPOKEN.md) names the colour at the step that has heard the colour word
and the question kind with its side at the last step. Asked of a trained model it says whether the question
was heard: a run whose answers fail while its heard head names the colour has heard the question and not
read the image. Prints the share of questions whose colour (at the colour word's step, questions whose
colour word eSpeak reported) and kind (at the last step) the head names, and the answers' accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from mmdemo.checkpoint import CheckpointError, load_checkpoint
from mmdemo.config import TrainConfig
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import SpokenBatch
from mmdemo.tasks.sort_of_clevr.evaluate import spoken_test_pool
from mmdemo.tasks.sort_of_clevr.hearing import HEARD
from mmdemo.tasks.sort_of_clevr.train import heard

SPOKEN = Path(__file__).resolve().parent.parent.parent / "checkpoints" / "sort-of-clevr" / "spoken"


@torch.inference_mode()
def probe(folder: str | Path, images: int = 50, spoken_data: str = TrainConfig.spoken_data) -> dict[str, float]:
    """{colour, kind, answer}: shares of the first `images` test scenes' questions (20 each)."""
    model, _ = load_checkpoint(folder)
    if model.cfg.question_input != "audio" or model.heard is None or model.cfg.heard_classes != len(HEARD):
        raise CheckpointError(f"{folder}: not a spoken checkpoint with the {len(HEARD)}-class heard head")
    samples = soc.test_split()[:images]
    pool = spoken_test_pool(samples, model, spoken_data)
    ids, n = [], 0
    for s in samples:
        ids.append(list(range(n, n + len(s.questions))))
        n += len(s.questions)
    batch = SpokenBatch(np.stack([s.image for s in samples]), [s.questions for s in samples], ids, pool, model.cfg)
    out = model(batch.images, batch.question, batch.question_mask, batch.image_index)
    h = heard(out, batch)
    answer = torch.tensor([model.cfg.labels.index(q.answer) for q in batch.questions])

    def share(logits: torch.Tensor, target: torch.Tensor) -> float:
        return round(float((logits.argmax(-1) == target).float().mean()), 4)

    return {"questions": len(batch.questions), "colour": share(h.colour_logits, h.colour_target),
            "kind": share(h.kind_logits, h.kind_target), "answer": share(out.logits, answer)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(SPOKEN), help="a spoken checkpoint folder (default: the shipped one)")
    parser.add_argument("--images", type=int, default=50, help="test scenes, 20 questions each (1-200; default 50)")
    parser.add_argument("--spoken-data", default=TrainConfig.spoken_data, help="utterance cache (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.images <= 200:
        parser.error("--images must be from 1 to 200")
    try:
        result = probe(args.checkpoint, args.images, args.spoken_data)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['questions']} questions in held-out voices: the heard head names the colour at the colour word for "
              f"{result['colour']:.1%}, the kind and side at the end for {result['kind']:.1%}; answers right {result['answer']:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
