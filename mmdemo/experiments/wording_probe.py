"""Ask the test split in wordings of your own: which words of a rewording a model trips on.

    python -m mmdemo.experiments.wording_probe --subtype closest \\
        "Can you tell me the shape of the object nearest the {c} object?" \\
        "Can you tell me the shape of the object nearest to the {c} object?"

Every template ({c}: the colour) is asked about every object of the 200 test scenes (1,200 questions per
template); the answer key is the spec's for --subtype (with --negate: the opposite side, for a "right" or
"bottom" wording). Prints the accuracy per template, one per line, or a JSON object with --json.
Typed checkpoints only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np
import torch

from mmdemo.checkpoint import DEFAULT, load_checkpoint
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.evaluate import predict_samples

SUBTYPES = (*soc.NONREL, *soc.REL)


def probe(checkpoint: str, subtype: str, templates: list[str], negate: bool = False, images: int = 200) -> dict[str, float]:
    """Accuracy of each template on the first `images` test scenes, asked about every colour."""
    model, _ = load_checkpoint(checkpoint)
    if model.cfg.question_input != "text":
        raise ValueError(f"{checkpoint} hears spoken questions; the probe asks typed ones")
    family = "nonrelational" if subtype in soc.NONREL else "relational"
    samples = soc.test_split()[:images]
    result = {}
    for template in templates:
        asked = [
            dataclasses.replace(s, questions=[
                soc.Question(template.format(c=c), soc.answer(s.scene, subtype, c, negate), family, subtype, c, template)
                for c in soc.COLOURS])
            for s in samples
        ]
        right = [a.prediction == a.question.answer for a in predict_samples(model, asked, torch.device("cpu"))]
        result[template] = round(float(np.mean(right)), 4)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("templates", nargs="+", help="question wordings with {c} where the colour goes")
    parser.add_argument("--subtype", required=True, choices=SUBTYPES, help="what the wordings ask (the answer key)")
    parser.add_argument("--negate", action="store_true", help="the wordings ask the opposite side (right, bottom)")
    parser.add_argument("--checkpoint", default=str(DEFAULT), help="typed checkpoint folder (default: the shipped default)")
    parser.add_argument("--images", type=int, default=200, help="test scenes to ask about (default 200: the whole split)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if any("{c}" not in t for t in args.templates):
        parser.error("every template needs {c} where the colour goes")
    if not 1 <= args.images <= 200:
        parser.error("--images must be between 1 and 200")
    torch.set_num_threads(1)
    try:
        result = probe(args.checkpoint, args.subtype, args.templates, args.negate, args.images)
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for template, accuracy in result.items():
            print(f"{accuracy:7.1%}  {template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
