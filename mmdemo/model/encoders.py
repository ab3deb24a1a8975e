"""Encoders. Shapes: B batch, T tokens (or audio steps), L log-mel frames, M n_mels, R = grid*grid image regions,
E text_dim, D image_channels, C audio_channels."""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from mmdemo.config import ModelConfig
from mmdemo.text import load_minilm

MINILM_DIM = 384
VOCAB_SIZE = 30522  # the MiniLM WordPiece vocabulary


def coord_channels(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) x and y in [-1, 1], so convolutions know where they are (CoordConv)."""
    ys = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).expand(batch, 2, height, width)


def conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ImageEncoder(nn.Module):
    """A small CoordConv CNN: (B, 3, H, W) in [0, 1] -> regions (B, R, D), row-major over the grid.

    The last two channels of every region are its cell centre (x, y) in [-1, 1], given explicitly so
    that "where" is linear in the region vector; the CNN adds the fine position within the cell.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.image_channels
        self.grid = cfg.grid
        # Full resolution first (objects are 10 px), then max-pooling: a small object is not averaged
        # away by the white background around it.
        self.stem = nn.Sequential(
            conv_block(5, 32, 1), nn.MaxPool2d(3, ceil_mode=True), conv_block(32, 64, 1), conv_block(64, d, 1)
        )
        self.mix = nn.Sequential(conv_block(d + 2, d, 1), nn.Conv2d(d, d - 2, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.regions(self.cells(images))

    def cells(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the last layer's map (B, D - 2, g, g): one cell per region (Grad-CAM reads it)."""
        b, _, h, w = images.shape
        x = torch.cat([images * 2.0 - 1.0, coord_channels(b, h, w, images)], dim=1)  # (B, 5, H, W)
        x = F.adaptive_max_pool2d(self.stem(x), self.grid)  # (B, D, g, g)
        return self.mix(torch.cat([x, coord_channels(b, self.grid, self.grid, x)], dim=1))

    def regions(self, cells: torch.Tensor) -> torch.Tensor:
        """cells (B, D - 2, g, g) -> regions (B, R, D), each with its cell centre appended."""
        b, _, g, _ = cells.shape
        x = torch.cat([cells, coord_channels(b, g, g, cells)], dim=1)  # (B, D, g, g)
        return x.flatten(2).transpose(1, 2)  # (B, R, D)


class PretrainedImageEncoder(nn.Module):
    """Frozen EfficientNet-Lite0 (from its pip wheel) -> 7 x 7 regions -> trained projection (B, 49, D).

    Frozen features come from a content-keyed FeatureCache, so the same picture is encoded once; training
    on a manifest feeds cached features straight to `project`. The last two channels are the cell centre.
    """

    def __init__(self, cfg: ModelConfig, cache_items: int = 256) -> None:
        super().__init__()
        from mmdemo.model.pretrained import FEATURE_DIM, FeatureCache

        self.grid = cfg.grid
        self.proj = nn.Sequential(nn.LayerNorm(FEATURE_DIM), nn.Linear(FEATURE_DIM, cfg.image_channels - 2))
        self.cache = FeatureCache(max_items=cache_items)

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) in [0, 1] -> (B, 1280, 7, 7), through the cache."""
        pixels = images.mul(255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return self.cache.get(list(pixels), device=images.device).to(images.device)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 1280, 7, 7) frozen features -> regions (B, 49, D), row-major."""
        b = features.shape[0]
        regions = features.flatten(2).transpose(1, 2)  # (B, 49, 1280)
        x = self.proj(regions)  # (B, 49, D - 2)
        coords = coord_channels(b, self.grid, self.grid, x).flatten(2).transpose(1, 2)  # (B, 49, 2)
        return torch.cat([x, coords], dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.frozen_features(images))


def make_image_encoder(cfg: ModelConfig) -> nn.Module:
    return PretrainedImageEncoder(cfg) if cfg.image_encoder == "efficientnet_lite0" else ImageEncoder(cfg)


class TextEncoder(nn.Module):
    """Token ids (B, T) -> per-token vectors (B, T, E).

    minilm: frozen contextual MiniLM states (cached per distinct question) -> trained projection; with
        cfg.causal MiniLM runs under a causal mask, so token t's state knows tokens 1..t only.
    minilm_static: frozen MiniLM input embeddings -> trained projection.
    learned: a trained embedding table over the tokenizer vocabulary.
    The frozen MiniLM is never saved in a checkpoint (nor in the state dict): it is `self.minilm`, the copy shared by
    every model on this encoder's device and dtype, so it follows `model.to(...)`; so does the states cache.
    """

    def __init__(self, cfg: ModelConfig, cache_size: int = 8192) -> None:
        super().__init__()
        self.kind = cfg.text_encoder
        self.causal = cfg.causal
        if self.kind == "learned":
            self.embed = nn.Embedding(VOCAB_SIZE, cfg.text_dim)
        else:
            self.proj = nn.Sequential(nn.Linear(MINILM_DIM, cfg.text_dim), nn.LayerNorm(cfg.text_dim))
        self.cache_size = cache_size
        # Training sets this: the sentences missing from the cache run in one MiniLM batch per length, with no
        # padding (about 30% less MiniLM time; a new run's first steps are mostly misses). Inference keeps one
        # padded batch, so the published numbers of shipped checkpoints reproduce bit for bit.
        self.length_buckets = False
        self._cache: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()  # the app shares one model between request threads

    @property
    def minilm(self) -> nn.Module | None:
        """The frozen MiniLM this encoder reads, on its own parameters' device and dtype (None for `learned`)."""
        if self.kind == "learned":
            return None
        weight = self.proj[0].weight
        return load_minilm(causal=self.causal and self.kind == "minilm", device=weight.device, dtype=weight.dtype)

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .double() ...: the cached states move along
        super()._apply(fn, *args, **kwargs)
        with self._lock:
            for key, states in self._cache.items():
                self._cache[key] = fn(states)
        return self

    def frozen_features(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, 384) frozen MiniLM features; contextual ones come from an LRU cache keyed by ids."""
        minilm = self.minilm
        if self.kind == "minilm_static":
            weight = minilm.embeddings.word_embeddings.weight
            return weight[token_ids.to(weight.device)].to(token_ids.device)
        with self._lock:
            return self._contextual(token_ids, mask, minilm)

    def _contextual(self, token_ids: torch.Tensor, mask: torch.Tensor, minilm: nn.Module) -> torch.Tensor:
        lengths = mask.sum(1).tolist()
        keys = [tuple(row[:n]) for row, n in zip(token_ids.tolist(), lengths)]
        missing = list(OrderedDict.fromkeys(k for k in keys if k not in self._cache))
        groups: dict[int, list[tuple[int, ...]]] = {}
        for k in missing:
            groups.setdefault(len(k) if self.length_buckets else 0, []).append(k)
        weight = self.proj[0].weight  # MiniLM and the cache live on its device, in its dtype
        for group in groups.values():
            longest = max(len(k) for k in group)
            ids = torch.zeros(len(group), longest, dtype=torch.long)
            att = torch.zeros(len(group), longest, dtype=torch.long)
            for i, k in enumerate(group):
                ids[i, : len(k)] = torch.tensor(k)
                att[i, : len(k)] = 1
            with torch.no_grad():
                states = minilm(input_ids=ids.to(weight.device), attention_mask=att.to(weight.device)).last_hidden_state  # (M, T, 384)
            for i, k in enumerate(group):
                self._cache[k] = states[i, : len(k)].clone()
        out = token_ids.new_zeros(token_ids.shape + (MINILM_DIM,), dtype=weight.dtype)  # (B, T, 384)
        for i, k in enumerate(keys):
            self._cache.move_to_end(k)
            out[i, : len(k)] = self._cache[k].to(out.device)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def remember(self, token_ids: torch.Tensor, mask: torch.Tensor, states: torch.Tensor) -> None:
        """Cache contextual states computed elsewhere (another rank under torchrun): states (B, T', 384), T' >= T."""
        weight = self.proj[0].weight
        with self._lock:
            for row, n, state in zip(token_ids.tolist(), mask.sum(1).tolist(), states):
                self._cache[tuple(row[:n])] = state[:n].to(device=weight.device, dtype=weight.dtype, copy=True)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        self._cache.clear()

    def forward(self, token_ids: torch.Tensor, mask: torch.Tensor, frozen: torch.Tensor | None = None) -> torch.Tensor:
        """frozen: this batch's frozen_features, when the caller already has them."""
        if self.kind == "learned":
            return self.embed(token_ids)  # (B, T, E)
        return self.proj(frozen if frozen is not None else self.frozen_features(token_ids, mask))  # (B, T, E)


AUDIO_INIT_MEAN, AUDIO_INIT_STD = -7.5, 4.0  # typical log-mel level of speech: the start of the learned input scaling


class CausalConv1d(nn.Conv1d):
    """A convolution over time that sees only the present and the past.

    Left padding kernel - stride: output i reads inputs up to (i + 1) * stride - 1, the end of its own block
    of `stride` inputs, and nothing later. A last partial block is completed with zeros on the right.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int) -> None:
        super().__init__(in_dim, out_dim, kernel, stride)
        self.left = kernel - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, C', ceil(L / stride))."""
        return super().forward(F.pad(x, (self.left, (-x.shape[-1]) % self.stride[0])))


class AudioEncoder(nn.Module):
    """Log-mel frames (B, L, M) and their mask (B, L) -> step vectors (B, T, E) and the step mask (B, T).

    A learned per-band scaling, log2(audio_stride) causal stride-2 convolutions (kernel 5), two causal
    stride-1 convolutions (kernel 3) at the step rate, then a projection with LayerNorm (as the text side).
    T = ceil(L / audio_stride); step i reads frames up to (i + 1) * audio_stride - 1 and never a later one.
    Every layer zeroes its output past each question's length, so padding in a batch changes nothing.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.audio_channels
        self.shift = nn.Parameter(torch.full((cfg.n_mels,), -AUDIO_INIT_MEAN))
        self.scale = nn.Parameter(torch.full((cfg.n_mels,), 1.0 / AUDIO_INIT_STD))
        num_down = cfg.audio_stride.bit_length() - 1
        dims = [cfg.n_mels] + [c] * (num_down + 2)
        self.convs = nn.ModuleList(
            CausalConv1d(dims[i], dims[i + 1], 5 if i < num_down else 3, 2 if i < num_down else 1) for i in range(num_down + 2)
        )
        self.proj = nn.Sequential(nn.Linear(c, cfg.text_dim), nn.LayerNorm(cfg.text_dim))

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = frame_mask.sum(1)  # (B,)
        x = ((frames + self.shift) * self.scale * frame_mask.unsqueeze(-1)).transpose(1, 2)  # (B, M, L)
        for conv in self.convs:
            lengths = torch.div(lengths + conv.stride[0] - 1, conv.stride[0], rounding_mode="floor")
            x = F.gelu(conv(x))  # (B, C, L)
            keep = torch.arange(x.shape[-1], device=x.device)[None] < lengths[:, None]  # (B, L)
            x = x * keep.unsqueeze(1)
        return self.proj(x.transpose(1, 2)), keep  # (B, T, E), (B, T)
