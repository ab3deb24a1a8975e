"""The GPU path: a few training steps (fp32 and --amp bf16), predict and bench on CUDA. Skipped without a GPU;
run `python -m pytest -q tests/test_gpu.py` on a GPU machine (docs/SCALING.md records the figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import run_cli

from mmdemo.checkpoint import DEFAULT
from mmdemo.inference import Predictor
from mmdemo.tasks.sort_of_clevr import data as soc

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TINY = ["train", "--train-images", "16", "--batch-images", "8", "--max-steps", "3", "--hidden-dim", "16", "--text-dim", "16",
        "--image-channels", "8", "--attn-dim", "8", "--quiet", "--log-every", "1", "--device", "cuda"]


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_train_a_few_steps_on_the_gpu(tmp_path: Path, amp: str) -> None:
    r = run_cli(*TINY, "--amp", amp, "--out", str(tmp_path / "ck"))
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["train_device"].startswith("cuda") and config["train"]["amp"] == amp
    assert all(np.isfinite(loss) for _, loss in config["train"]["loss_log"])
    pred = Predictor.load(tmp_path / "ck", device="cuda").predict(soc.generate("test", 1)[0].image, "What shape is the red object?")
    assert abs(sum(pred.probs.values()) - 1) < 1e-4


def test_fp32_on_the_gpu_follows_the_cpu(tmp_path: Path) -> None:
    """Same seed, same 3 steps: the GPU's fp32 training stays close to the CPU's (kernels differ, so not bit for bit)."""
    runs = {}
    for device in ("cpu", "cuda"):
        r = run_cli(*TINY[:-1], device, "--no-evaluate", "--out", str(tmp_path / device))
        assert r.returncode == 0, r.stderr
        runs[device] = json.loads((tmp_path / device / "config.json").read_text())["train"]["loss_log"]
    assert all(abs(a - b) < 1e-3 for (_, a), (_, b) in zip(runs["cpu"], runs["cuda"])), runs


def test_predict_on_the_gpu_matches_the_cpu() -> None:
    image = soc.generate("test", 1)[0].image
    cpu = Predictor.load(DEFAULT, device="cpu").predict(image, "Is the red object on the left?")
    gpu = Predictor.load(DEFAULT, device="cuda").predict(image, "Is the red object on the left?")
    assert gpu.answer == cpu.answer
    assert max(abs(gpu.probs[k] - cpu.probs[k]) for k in cpu.probs) < 1e-3


def test_bench_on_the_gpu() -> None:
    r = run_cli("bench", "--device", "cuda", "--steps", "3", "--runs", "20", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["device"] == torch.cuda.get_device_name(0) and out["train_pairs_per_s"] > 0 and out["predict_ms_p50"] > 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="nccl: one GPU per process")
def test_two_gpu_processes_follow_one(tmp_path: Path) -> None:
    from test_distributed import torchrun

    assert run_cli(*TINY, "--no-evaluate", "--out", str(tmp_path / "one")).returncode == 0
    r = torchrun(*TINY, "--no-evaluate", "--out", str(tmp_path / "two"))
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = (json.loads((tmp_path / d / "config.json").read_text())["train"] for d in ("one", "two"))
    assert two["world_size"] == 2 and all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(one["loss_log"], two["loss_log"]))
