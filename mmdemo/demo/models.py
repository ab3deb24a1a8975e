"""The checkpoint a room answers with: looked up in the registry, a load failure as a message."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmdemo.checkpoint import CheckpointError
from mmdemo.errors import InputError
from mmdemo.inference import Prediction, Predictor
from mmdemo.registry import Registry


def get_predictor(registry: Registry, checkpoint: str | None) -> Predictor:
    """The registry's predictor for a checkpoint name (None: the default); one that cannot load is a message."""
    try:
        return registry.get(checkpoint or None)
    except CheckpointError as e:
        raise InputError(f"That checkpoint cannot be loaded: {e}") from None


def answered(registry: Registry, checkpoint: str | None, image: Any, question: Any,
             predictor: Predictor | None = None) -> tuple[Predictor, np.ndarray, Prediction]:
    """The checkpoint's predictor (or the one given, already looked up), the exact pixels it sees (decoded once:
    shown and asked alike) and its answer. Input a person can fix raises InputError."""
    predictor = predictor or get_predictor(registry, checkpoint)
    pixels = predictor.prepare(image)
    return predictor, pixels, predictor.predict(pixels, question)
