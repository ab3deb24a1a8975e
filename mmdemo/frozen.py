"""One copy of a frozen network per device and dtype: the one way the package's shared encoders follow a model."""

from __future__ import annotations

import copy
from typing import Any

_copies: dict[tuple, Any] = {}  # (name, device, dtype) -> a copy; the CPU float32 original is the loader's own


def on_device(name: str, original: Any, device: Any = None, dtype: Any = None) -> Any:
    """`original` (a frozen torch module on the CPU, float32) as a copy on device/dtype, made on first use and never
    moved, so a model moved to a GPU reads its own copy while one left on the CPU keeps the original. The caller
    holds its loader's lock."""
    import torch

    device = torch.device("cpu") if device is None else torch.device(device)
    dtype = torch.float32 if dtype is None else dtype
    if (device, dtype) == (torch.device("cpu"), torch.float32):
        return original
    key = (name, device, dtype)
    if key not in _copies:
        with torch.inference_mode(False):  # a copy made while answering must also serve training
            _copies[key] = copy.deepcopy(original).to(device=device, dtype=dtype)
    return _copies[key]
