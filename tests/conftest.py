"""Shared fixtures: tiny seeded configs on CPU, offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest
import torch

from mmdemo.config import ModelConfig


def tiny_config(**overrides) -> ModelConfig:
    base = {"text_dim": 16, "hidden_dim": 24, "image_channels": 12, "attn_dim": 8, "grid": 5, "num_hops": 2}
    base.update(overrides)
    return ModelConfig(**base)


@pytest.fixture(scope="module")
def spoken_predictor():
    """The shipped spoken checkpoint's Predictor on CPU (tests of what it heard: test_hearing, test_heard_scope)."""
    from pathlib import Path

    from mmdemo.inference import Predictor

    return Predictor.load(Path(__file__).resolve().parent.parent / "checkpoints" / "sort-of-clevr" / "spoken", device="cpu")


@pytest.fixture(scope="module")
def spoken_scene():
    """The test split's first scene (its pixels), for the spoken Predictor."""
    from mmdemo.tasks.sort_of_clevr import data as soc

    return soc.generate("test", 1)[0].image


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def peak_rise_mb(fn, *args, **kwargs):
    """(fn's result or the exception it raised, how far it raised this process's peak resident memory in MB)."""
    from mmdemo.experiments.serve_bench import _rss_mb, peak_rss_mb, reset_peak_rss

    pid = os.getpid()
    reset_peak_rss(pid)
    before = _rss_mb(pid)
    try:
        result = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - returned for the test to check
        result = e
    return result, peak_rss_mb(pid) - before
