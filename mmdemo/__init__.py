"""mmdemo: RNN-based multimodal fusion (sum, concat, attention) with attention you can see."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmdemo.inference import Prediction, Predictor

__all__ = ["Prediction", "Predictor", "load_predictor"]


def load_predictor(checkpoint: str | None = None, device: str = "auto") -> Predictor:
    """Load a checkpoint folder (default: the shipped default checkpoint) into a Predictor."""
    from mmdemo.inference import Predictor

    return Predictor.load(checkpoint, device=device)


def __getattr__(name: str):
    if name in ("Predictor", "Prediction"):
        from mmdemo import inference

        return getattr(inference, name)
    raise AttributeError(name)
