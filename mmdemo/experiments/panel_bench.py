"""How long the Ask tab's "Does it use what it looks at?" panel takes on a generated scene (issue 31's bar: 1.5 s).

    python -m mmdemo.experiments.panel_bench [--scenes 10] [--checkpoint sort-of-clevr/default] [--json]

Times Faith.panel (the answer, Integrated Gradients with mmdemo.attribution.IG_STEPS steps, Grad-CAM, four overlays)
and Faith.intervene (an edit, the answer and panel of the edited scene) over the app's six example questions on
`--scenes` generated scenes, after one warm-up call, on the machine's CPU threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmdemo.attribution import IG_STEPS


def run(scenes: int, checkpoint: str | None) -> dict:
    from mmdemo.demo import Rooms, faith
    from mmdemo.demo.scenes import EXAMPLE_QUESTIONS
    from mmdemo.registry import Registry

    rooms = Rooms.create(Registry(device="cpu"), Path(tempfile.mkdtemp()))
    first = rooms.scenes.random(0)
    rooms.faith.panel(first.image, EXAMPLE_QUESTIONS[0], checkpoint, first.state)  # warm-up: captum's import, the model
    panel, edit = [], []
    for seed in range(1, scenes + 1):
        s = rooms.scenes.random(seed)
        for k, question in enumerate(EXAMPLE_QUESTIONS):
            t = time.perf_counter()
            rooms.faith.panel(s.image, question, checkpoint, s.state)
            panel.append(time.perf_counter() - t)
            t = time.perf_counter()
            rooms.faith.intervene(faith.LOOKED if k % 2 else faith.IGNORED, s.image, question, checkpoint, s.state)
            edit.append(time.perf_counter() - t)

    def ms(xs: list[float], q: float) -> float:
        return round(1000 * float(np.quantile(xs, q)), 1)

    return {"checkpoint": checkpoint or "default", "threads": torch.get_num_threads(), "ig_steps": IG_STEPS, "calls": len(panel),
            "panel_ms_p50": ms(panel, 0.5), "panel_ms_p95": ms(panel, 0.95), "panel_ms_max": ms(panel, 1.0),
            "intervene_ms_p50": ms(edit, 0.5), "intervene_ms_p95": ms(edit, 0.95)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmdemo.experiments.panel_bench", description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=10)
    p.add_argument("--checkpoint", default=None, help="a registry name (default: the shipped default)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.scenes <= 1000:
        sys.stderr.write(f"{p.prog}: error: --scenes must be 1..1000, got {args.scenes}\n")
        return 2
    result = run(args.scenes, args.checkpoint)
    for k, v in result.items():
        print(f"{k:>18}: {v}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
