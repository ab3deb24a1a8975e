"""The RNN core: encoders -> per-step fusion -> RNN cell -> attention over steps -> head.

Shapes: N images, B questions, T tokens, R regions, K hops, H hidden_dim, C classes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mmdemo.config import ModelConfig
from mmdemo.encoders import TextEncoder, make_image_encoder
from mmdemo.fusion import ImageMemory, make_fusion

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, C)
    region_attention: torch.Tensor  # (B, T, R) hop-1 weights at each step; each row sums to 1
    hop_attention: torch.Tensor  # (B, T, K, R) every hop's weights (K = 1 for sum/concat)
    step_attention: torch.Tensor  # (B, T) pooling weights over steps; 0 on padding; sums to 1
    states: torch.Tensor  # (B, T, H) the RNN's hidden state after each step
    loss: torch.Tensor | None  # cross-entropy when targets are given


def question_context(tokens: torch.Tensor, mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, T, E) the question so far at each step: causal, the running mean of tokens 1..t; else the
    whole question's masked mean at every step."""
    keep = mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
    if causal:
        return (tokens * keep).cumsum(1) / keep.cumsum(1).clamp(min=1.0)  # (B, T, E)
    mean = (tokens * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, E)
    return mean.unsqueeze(1).expand_as(tokens)  # (B, T, E)


class FusionRNN(nn.Module):
    """Reads a question token by token; at every step the fusion brings in the image."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_dim
        self.text = TextEncoder(cfg)
        self.question_proj = nn.Linear(cfg.text_dim, cfg.text_dim) if cfg.question_context else None
        self.image = make_image_encoder(cfg)
        self.fusion = make_fusion(cfg)
        self.bridge_dim = 2 if cfg.label_bridge else 0  # [attended similarity, best similarity] per step
        # How strongly a word's similarity to a region's class names steers attention to it (bridge_attention).
        self.bridge_scale = nn.Parameter(torch.tensor(5.0)) if cfg.bridge_attention else None
        in_dim = self.fusion.out_dim + self.bridge_dim
        self.cell = CELLS[cfg.cell](in_dim, h)
        # The initial state sees the whole image (Show-Attend-Tell's init_h): every fusion gets it.
        self.init_state = nn.Linear(cfg.image_channels, 2 * h if cfg.cell == "lstm" else h)
        self.step_score = nn.Linear(h, 1)
        # The head reads the pooled RNN states and, as a short path for the gradient, the pooled fused inputs.
        self.head = nn.Sequential(nn.Linear(h + in_dim, h), nn.ReLU(), nn.Linear(h, len(cfg.labels)))

    def encode_images(self, images: torch.Tensor) -> ImageMemory:
        """(N, 3, H, W) in [0, 1] -> per-image memory; run once per image, however many questions."""
        if self.cfg.image_encoder != "cnn":
            return self.encode_features(self.image.frozen_features(images))
        return self.encode_regions(self.image(images))

    def encode_features(self, features: torch.Tensor) -> ImageMemory:
        """Frozen pretrained features (N, 1280, 7, 7) -> memory (with the label bridge's semantic regions)."""
        semantic = None
        if self.cfg.label_bridge or self.cfg.region_features != "raw":
            from mmdemo.pretrained import semantic_regions

            semantic = semantic_regions(features)  # (N, 49, 384)
        memory = self.encode_regions(self.image.project(features, semantic))
        return memory._replace(semantic=semantic) if self.cfg.label_bridge else memory

    def encode_regions(self, regions: torch.Tensor) -> ImageMemory:
        """(N, R, D) region vectors -> memory (the image-only baseline sees them; text-only gets zeros)."""
        if self.cfg.modality == "text":
            regions = torch.zeros_like(regions)
        return self.fusion.prepare(regions)

    def forward(
        self,
        images: torch.Tensor,
        token_ids: torch.Tensor,
        token_mask: torch.Tensor,
        image_index: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> ModelOutput:
        """images (N, 3, H, W); token_ids, token_mask (B, T); image_index (B,) picks each question's image."""
        memory = self.encode_images(images)
        return self.answer(memory, token_ids, token_mask, image_index, targets)

    def bridge_similarity(self, frozen: torch.Tensor, memory: ImageMemory) -> torch.Tensor:
        """(B, T, R) cosine of each word's frozen MiniLM state (B, T, 384) with each region's class-name vector."""
        words = F.normalize(frozen.to(memory.values.device), dim=-1)  # (B, T, 384)
        sims = torch.einsum("btd,brd->btr", words, memory.semantic)
        if self.cfg.modality != "both":  # single-modality baselines must not see the other input through here
            sims = torch.zeros_like(sims)
        return sims

    def answer(
        self,
        memory: ImageMemory,
        token_ids: torch.Tensor,
        token_mask: torch.Tensor,
        image_index: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Questions against already-encoded images."""
        if image_index is not None:
            memory = memory.select(image_index)
        mask = token_mask.bool()  # (B, T)
        frozen = self.text.frozen_features(token_ids, mask) if self.cfg.label_bridge else None  # (B, T, 384)
        tokens = self.text(token_ids, mask, frozen)  # (B, T, E)
        if self.cfg.modality == "image":
            tokens = torch.zeros_like(tokens)  # the image-only baseline: the words carry nothing
        if self.question_proj is not None:
            tokens = tokens + self.question_proj(question_context(tokens, mask, self.cfg.causal))  # (B, T, E)
        state = torch.tanh(self.init_state(memory.summary))  # (B, H) or (B, 2H)
        h, c = state.chunk(2, dim=-1) if self.cfg.cell == "lstm" else (state, None)
        sims = self.bridge_similarity(frozen, memory) if frozen is not None else None  # (B, T, R)
        # bridge_attention: each word's similarity to each region, scaled, is a prior on hop 1's scores.
        prior = self.bridge_scale * sims if self.bridge_scale is not None and sims is not None else None  # (B, T, R)
        hiddens, weights, inputs = [], [], []
        for t in range(tokens.shape[1]):
            step_args = () if prior is None else (prior[:, t],)
            fused, w = self.fusion(tokens[:, t], h, memory, *step_args)  # (B, F), (B, K, R)
            if sims is not None:  # how well this word agrees with what the step looks at, and with the best region
                fused = torch.cat([fused, (w[:, 0] * sims[:, t]).sum(-1, keepdim=True), sims[:, t].amax(-1, keepdim=True)], dim=-1)
            keep = mask[:, t : t + 1]  # (B, 1): padding steps leave the state untouched
            if c is None:
                h = torch.where(keep, self.cell(fused, h), h)
            else:
                h_new, c_new = self.cell(fused, (h, c))
                h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
            hiddens.append(h)
            weights.append(w)
            inputs.append(fused)
        hiddens_t = torch.stack(hiddens, dim=1)  # (B, T, H)
        hop_attention = torch.stack(weights, dim=1)  # (B, T, K, R)
        scores = self.step_score(hiddens_t).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        step_attention = scores.softmax(dim=-1)  # (B, T)
        pooled = torch.einsum("bt,bth->bh", step_attention, hiddens_t)  # (B, H)
        pooled_in = torch.einsum("bt,btf->bf", step_attention, torch.stack(inputs, dim=1))  # (B, F)
        logits = self.head(torch.cat([pooled, pooled_in], dim=-1))  # (B, C)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return ModelOutput(logits, hop_attention[:, :, 0], hop_attention, step_attention, hiddens_t, loss)


def pick_device(name: str = "auto") -> torch.device:
    """auto -> cuda when available, else cpu; chosen once in entry points."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {str(name)[:40]!r}: use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no GPU is available")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {dev}: there are only {torch.cuda.device_count()} GPU(s)")
    return dev
