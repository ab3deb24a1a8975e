"""Time MiniLM on a training run's text-cache misses: one padded batch, or one batch per length.

    python -m mmdemo.experiments.text_cache_bench [--batches 6] [--json]

A new training run (the default's recipe: typed training wordings, frames, dropped words) draws its first
batches; every sentence is new to the text cache then, so MiniLM computes them all. This times that work
per batch both ways (`TextEncoder.length_buckets` off: the longest sentence sets the padding of all; on: no
padding, one MiniLM call per token length) on the same sentences, and reports how far the states differ.
CPU, torch's threads; run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.model.encoders import TextEncoder
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import TypedQuestions
from mmdemo.tasks.sort_of_clevr.train import SceneTask


def first_batches(batches: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(token ids, mask) of a new training run's first `batches` batches, the default's recipe."""
    model_cfg, train_cfg = ModelConfig(), TrainConfig()
    images = batches * train_cfg.batch_images
    samples = soc.generate("train", images, seed=seed, wording="train", augment=True)
    task = SceneTask(samples, TypedQuestions(model_cfg, train_cfg), model_cfg, train_cfg, torch.device("cpu"))
    out = []
    for step in range(batches):
        b = task.batch(np.arange(step * train_cfg.batch_images, (step + 1) * train_cfg.batch_images), step).batch
        out.append((b.question, b.question_mask))
    return out


def run(batches: int = 6, seed: int = 0) -> dict[str, float]:
    """Seconds per batch of misses, padded and bucketed, and the largest difference between their states."""
    drawn = first_batches(batches, seed)
    result: dict[str, float] = {}
    states: dict[bool, list[torch.Tensor]] = {}
    for buckets in (False, True, False):  # padded twice: the first pass also warms MiniLM up
        text = TextEncoder(ModelConfig(), cache_size=1 << 20)
        text.length_buckets = buckets
        start = time.perf_counter()
        states[buckets] = [text.frozen_features(ids, mask) for ids, mask in drawn]
        result["bucketed_s" if buckets else "padded_s"] = round((time.perf_counter() - start) / batches, 3)
        result["sentences"] = len(text._cache)
    result["speedup"] = round(result["padded_s"] / result["bucketed_s"], 2)
    result["max_abs_diff"] = max(float((a - b).abs().max()) for a, b in zip(states[False], states[True]))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=6, help="training batches to draw (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error("--batches must be at least 1")
    result = run(args.batches, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['sentences']} new sentences in {args.batches} batches: MiniLM {result['padded_s']} s per batch "
              f"padded, {result['bucketed_s']} s bucketed ({result['speedup']}x); states differ by at most "
              f"{result['max_abs_diff']:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
