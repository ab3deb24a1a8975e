"""Per-step fusion of the text token with the image. Each module returns (fused, weights).

Shapes: B questions, R regions, D image_channels, E text_dim, H hidden_dim, A attn_dim, K hops.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from mmdemo.config import ModelConfig


class ImageMemory(NamedTuple):
    """What a fusion reads from one image, computed once per image and shared by its questions."""

    values: torch.Tensor  # (B, R, D) region vectors
    keys: tuple[torch.Tensor, ...]  # K tensors (B, R, A): attention keys per hop (empty for sum/concat).
    # A tuple, not one (K, B, R, A) tensor: indexing a stacked tensor at every step would make autograd
    # allocate and fill the whole (K, B, R, A) gradient once per step and hop.
    summary: torch.Tensor  # (B, D) mean over regions
    semantic: torch.Tensor | None = None  # (B, R, 384) regions in the text encoder's space (label bridge)

    def select(self, index: torch.Tensor) -> ImageMemory:
        """Rows for each question, given the image index of each question."""
        keys = tuple(k.index_select(0, index) for k in self.keys)
        semantic = None if self.semantic is None else self.semantic.index_select(0, index)
        return ImageMemory(self.values.index_select(0, index), keys, self.summary.index_select(0, index), semantic)

    def head(self, n: int) -> ImageMemory:
        """The first n rows (views, no copy)."""
        semantic = None if self.semantic is None else self.semantic[:n]
        return ImageMemory(self.values[:n], tuple(k[:n] for k in self.keys), self.summary[:n], semantic)


def uniform_weights(values: torch.Tensor) -> torch.Tensor:
    """(B, 1, R) equal weights: sum and concat look at the whole image evenly."""
    b, r, _ = values.shape
    return values.new_full((b, 1, r), 1.0 / r)


class SumFusion(nn.Module):
    """The seed article's sum: token + projected image summary (B, E)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.image_proj = nn.Linear(cfg.image_channels, cfg.text_dim)
        self.out_dim = cfg.text_dim

    def prepare(self, regions: torch.Tensor) -> ImageMemory:
        return ImageMemory(regions, (), regions.mean(1))

    def forward(self, token: torch.Tensor, state: torch.Tensor, memory: ImageMemory) -> tuple[torch.Tensor, torch.Tensor]:
        return token + self.image_proj(memory.summary), uniform_weights(memory.values)


class ConcatFusion(SumFusion):
    """The seed article's concatenation: [token; image summary] (B, E + D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        del self.image_proj
        self.out_dim = cfg.text_dim + cfg.image_channels

    def forward(self, token: torch.Tensor, state: torch.Tensor, memory: ImageMemory) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([token, memory.summary], dim=-1), uniform_weights(memory.values)


class AttentionFusion(nn.Module):
    """Stacked (multi-hop) additive attention over regions at every RNN step.

    Each hop scores every region with a small MLP over [region; query] (Bahdanau-style):
    score_r = w . relu(W_r region_r + W_q query), and the context is V sum_r weight_r region_r, so what
    the step attends to reaches the RNN unchanged. Hop 1 is queried by the RNN state and the current
    token; hop k > 1 also by hop k-1's context, so one step can find the named object and then look
    relative to it (closest, furthest, same shape). Output: [token; context_1; ...; context_K], and with
    `attention_global` [token; image summary; context_1; ...]: the pooled image that concat sees, plus
    where each word looks (the photo models use it; a clip-art picture is often one object filling the frame).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, a, k = cfg.image_channels, cfg.attn_dim, cfg.num_hops
        self.num_hops, self.attn_dim = k, a
        self.region_proj = nn.Linear(d, k * a)  # W_r for every hop, applied once per image
        self.query_proj = nn.ModuleList(
            nn.Linear(cfg.hidden_dim + cfg.text_dim + (d if hop else 0), a) for hop in range(k)
        )
        self.score = nn.ModuleList(nn.Linear(a, 1, bias=False) for _ in range(k))
        self.value = nn.ModuleList(nn.Linear(d, d) for _ in range(k))
        self.use_global = cfg.attention_global
        self.out_dim = cfg.text_dim + (k + int(self.use_global)) * d

    def prepare(self, regions: torch.Tensor) -> ImageMemory:
        b, r, _ = regions.shape
        keys = self.region_proj(regions).view(b, r, self.num_hops, self.attn_dim).unbind(2)  # K x (B, R, A)
        return ImageMemory(regions, keys, regions.mean(1))

    def scores(self, hop: int, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """(B, R) region scores of one hop: w . relu(k_r + q)."""
        return self.score[hop](torch.relu(keys + query.unsqueeze(1))).squeeze(-1)  # (B, R, A) -> (B, R)

    def forward(
        self, token: torch.Tensor, state: torch.Tensor, memory: ImageMemory, prior: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """prior (B, R): added to hop 1's region scores (the label bridge's word-region similarity)."""
        contexts, weights = [], []
        query_in = torch.cat([state, token], dim=-1)  # (B, H + E)
        for hop in range(self.num_hops):
            query = self.query_proj[hop](query_in)  # (B, A)
            scores = self.scores(hop, query, memory.keys[hop])  # (B, R)
            w = (scores + prior if prior is not None and hop == 0 else scores).softmax(dim=-1)  # (B, R)
            context = self.value[hop](torch.bmm(w.unsqueeze(1), memory.values).squeeze(1))  # (B, D)
            contexts.append(context)
            weights.append(w)
            query_in = torch.cat([state, token, context], dim=-1)  # (B, H + E + D)
        pooled = [memory.summary] if self.use_global else []
        return torch.cat([token, *pooled, *contexts], dim=-1), torch.stack(weights, dim=1)  # (B, F), (B, K, R)


def make_fusion(cfg: ModelConfig) -> nn.Module:
    if cfg.has_region_attention:
        return AttentionFusion(cfg)
    return {"sum": SumFusion, "concat": ConcatFusion}[cfg.fusion](cfg)
