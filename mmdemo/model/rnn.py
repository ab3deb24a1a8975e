"""The RNN core: encoders -> per-step fusion -> RNN cell -> attention over steps -> head.

Shapes: N images, B questions, T steps (tokens, or audio_stride log-mel frames each), L frames, M n_mels,
R regions, K hops, H hidden_dim, C classes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mmdemo.config import ModelConfig
from mmdemo.model.encoders import AudioEncoder, TextEncoder, make_image_encoder
from mmdemo.model.fusion import ImageMemory, make_fusion

CELL_MODULES = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}  # config.CELLS, built
PACK_ROWS = 32  # spoken batches shrink in steps of this many questions as the shorter ones end


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, C)
    region_attention: torch.Tensor  # (B, T, R) hop-1 weights at each step; each row sums to 1
    hop_attention: torch.Tensor  # (B, T, K, R) every hop's weights (K = 1 for sum/concat)
    step_attention: torch.Tensor  # (B, T) pooling weights over steps; 0 on padding; sums to 1
    states: torch.Tensor  # (B, T, H) the RNN's hidden state after each step
    loss: torch.Tensor | None  # cross-entropy when targets are given
    step_mask: torch.Tensor | None = None  # (B, T) the real steps (tokens, or audio steps inside the recording)
    heard: torch.Tensor | None = None  # (B, T, heard_classes) what the state says was heard (training's auxiliary loss)


def question_context(tokens: torch.Tensor, mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, T, E) the question so far at each step: causal, the running mean of tokens 1..t; else the
    whole question's masked mean at every step."""
    keep = mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
    if causal:
        return (tokens * keep).cumsum(1) / keep.cumsum(1).clamp(min=1.0)  # (B, T, E)
    mean = (tokens * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, E)
    return mean.unsqueeze(1).expand_as(tokens)  # (B, T, E)


class FusionRNN(nn.Module):
    """Reads a question token by token (or a spoken one, audio_stride frames a step); at every step the fusion
    brings in the image."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_dim
        audio = cfg.question_input == "audio"
        self.text = None if audio else TextEncoder(cfg)  # (B, T) token ids -> (B, T, E)
        self.audio = AudioEncoder(cfg) if audio else None  # (B, L, M) log-mel frames -> (B, T, E)
        # The question so far (causal: running mean of tokens 1..t; reads ahead: the whole question's mean), projected
        # and added to every step's token.
        self.question_proj = nn.Linear(cfg.text_dim, cfg.text_dim)
        self.image = make_image_encoder(cfg)
        self.fusion = make_fusion(cfg)
        self.bridge_dim = 2 if cfg.label_bridge else 0  # [attended similarity, best similarity] per step
        # How strongly a word's similarity to a region's class names steers attention to it (bridge_attention).
        self.bridge_scale = nn.Parameter(torch.tensor(5.0)) if cfg.bridge_attention else None
        in_dim = self.fusion.out_dim + self.bridge_dim
        self.cell = CELL_MODULES[cfg.cell](in_dim, h)
        # The initial state sees the whole image (Show-Attend-Tell's init_h): every fusion gets it.
        self.init_state = nn.Linear(cfg.image_channels, 2 * h if cfg.cell == "lstm" else h)
        self.step_score = nn.Linear(h, 1)
        # The head reads the pooled RNN states and, as a short path for the gradient, the pooled fused inputs.
        self.head = nn.Sequential(nn.Linear(h + in_dim, h), nn.ReLU(), nn.Linear(h, len(cfg.labels)))
        # Spoken questions: what the state has heard so far (colour, question kind), supervised in training only.
        self.heard = nn.Linear(h, cfg.heard_classes) if cfg.heard_classes else None

    def encode_images(self, images: torch.Tensor) -> ImageMemory:
        """(N, 3, H, W) in [0, 1] -> per-image memory; run once per image, however many questions."""
        if self.cfg.image_encoder != "cnn":
            return self.encode_features(self.image.frozen_features(images))
        return self.encode_regions(self.image(images))

    def encode_features(self, features: torch.Tensor) -> ImageMemory:
        """Frozen pretrained features (N, 1280, 7, 7) -> memory (with the label bridge's semantic regions)."""
        memory = self.encode_regions(self.image.project(features))
        if not self.cfg.label_bridge:
            return memory
        from mmdemo.model.pretrained import semantic_regions

        return memory._replace(semantic=semantic_regions(features))  # (N, 49, 384)

    def encode_regions(self, regions: torch.Tensor) -> ImageMemory:
        """(N, R, D) region vectors -> memory (the image-only baseline sees them; text-only gets zeros)."""
        if self.cfg.modality == "text":
            regions = torch.zeros_like(regions)
        return self.fusion.prepare(regions)

    def forward(
        self,
        images: torch.Tensor,
        question: torch.Tensor,
        question_mask: torch.Tensor,
        image_index: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> ModelOutput:
        """images (N, 3, H, W); question: token ids (B, T), or for audio log-mel frames (B, L, M), with its
        mask (B, T) / (B, L); image_index (B,) picks each question's image."""
        memory = self.encode_images(images)
        return self.answer(memory, question, question_mask, image_index, targets)

    def bridge_similarity(self, frozen: torch.Tensor, memory: ImageMemory) -> torch.Tensor:
        """(B, T, R) cosine of each word's frozen MiniLM state (B, T, 384) with each region's class-name vector."""
        words = F.normalize(frozen.to(memory.values.device), dim=-1)  # (B, T, 384)
        sims = torch.einsum("btd,brd->btr", words, memory.semantic)
        if self.cfg.modality != "both":  # single-modality baselines must not see the other input through here
            sims = torch.zeros_like(sims)
        return sims

    def encode_question(self, question: torch.Tensor, question_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """-> step vectors (B, T, E), step mask (B, T), frozen MiniLM states (B, T, 384) for the label bridge or None."""
        if self.audio is not None:
            steps, mask = self.audio(question, question_mask.bool())
            return steps, mask, None
        mask = question_mask.bool()  # (B, T)
        frozen = self.text.frozen_features(question, mask) if self.cfg.label_bridge else None  # (B, T, 384)
        return self.text(question, mask, frozen), mask, frozen

    def _read_masked(
        self, tokens: torch.Tensor, mask: torch.Tensor, memory: ImageMemory, h: torch.Tensor, c: torch.Tensor | None,
        sims: torch.Tensor | None, prior: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every step on every question; padding steps leave the state untouched.
        -> hidden states (B, T, H), every hop's weights (B, T, K, R), fused inputs (B, T, F)."""
        hiddens, weights, inputs = [], [], []
        for t in range(tokens.shape[1]):
            step_args = () if prior is None else (prior[:, t],)
            fused, w = self.fusion(tokens[:, t], h, memory, *step_args)  # (B, F), (B, K, R)
            if sims is not None:  # how well this word agrees with what the step looks at, and with the best region
                fused = torch.cat([fused, (w[:, 0] * sims[:, t]).sum(-1, keepdim=True), sims[:, t].amax(-1, keepdim=True)], dim=-1)
            h, c = self.cell_step(fused, h, c, mask[:, t : t + 1])  # padding steps leave the state untouched
            hiddens.append(h)
            weights.append(w)
            inputs.append(fused)
        return torch.stack(hiddens, dim=1), torch.stack(weights, dim=1), torch.stack(inputs, dim=1)

    def cell_step(
        self, fused: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, keep: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One RNN step (B, F) -> new (h, c); rows where keep (B, 1) is False keep their old state."""
        if c is None:
            return torch.where(keep, self.cell(fused, h), h), None
        h_new, c_new = self.cell(fused, (h, c))
        return torch.where(keep, h_new, h), torch.where(keep, c_new, c)

    def _read_packed(
        self, steps: torch.Tensor, mask: torch.Tensor, memory: ImageMemory, h: torch.Tensor, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Questions sorted longest first (mask (B, T) a prefix per row): step t runs on the first n_t rows, the
        questions still being heard, rounded up to PACK_ROWS (so the image memory is sliced once per size, not
        once per step: each slice costs a full-size gradient in backward). Rows that ended keep their state.
        -> as _read_masked."""
        b, num_steps = mask.shape
        rows = [min(b, -(-n // PACK_ROWS) * PACK_ROWS) for n in mask.sum(0).tolist()]  # (T,) non-increasing
        views = {b: memory}
        step_vectors = steps.unbind(1)  # T x (B, E): one backward node for all steps, not one full-size per step
        hiddens, weights, inputs = [], [], []
        for t in range(num_steps):
            n = rows[t]
            if n < h.shape[0]:
                h, c = h[:n], None if c is None else c[:n]
            if n not in views:
                views[n] = memory.head(n)
            x = step_vectors[t] if n == b else step_vectors[t][:n]
            fused, w = self.fusion(x, h, views[n])  # (n, F), (n, K, R)
            h, c = self.cell_step(fused, h, c, mask[:n, t : t + 1])  # questions that ended keep their state
            hiddens.append(h)
            weights.append(w)
            inputs.append(fused)
        # The packed steps (step-major, like a PackedSequence) into (B, T, ...), one copy each.
        ran = torch.arange(b, device=mask.device)[None] < torch.tensor(rows, device=mask.device)[:, None]  # (T, B)
        where = torch.nonzero(ran)  # (P, 2) (step, row), step-major
        index = where[:, 0] * b + where[:, 1]  # (P,)

        def unpack(parts: list[torch.Tensor], fill: float) -> torch.Tensor:
            packed = torch.cat(parts)  # (P, ...)
            full = packed.new_full((num_steps * b, *packed.shape[1:]), fill).index_copy(0, index, packed)
            return full.view(num_steps, b, *packed.shape[1:]).transpose(0, 1)  # (B, T, ...)

        return unpack(hiddens, 0.0), unpack(weights, 1.0 / weights[0].shape[-1]), unpack(inputs, 0.0)

    def answer(
        self,
        memory: ImageMemory,
        question: torch.Tensor,
        question_mask: torch.Tensor,
        image_index: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Questions (token ids or log-mel frames, as in forward) against already-encoded images."""
        if image_index is not None:
            memory = memory.select(image_index)
        tokens, mask, frozen = self.encode_question(question, question_mask)  # (B, T, E), (B, T)
        if self.cfg.modality == "image":
            tokens = torch.zeros_like(tokens)  # the image-only baseline: the words carry nothing
        tokens = tokens + self.question_proj(question_context(tokens, mask, self.cfg.causal))  # (B, T, E)
        state = torch.tanh(self.init_state(memory.summary))  # (B, H) or (B, 2H)
        h, c = state.chunk(2, dim=-1) if self.cfg.cell == "lstm" else (state, None)
        sims = self.bridge_similarity(frozen, memory) if frozen is not None else None  # (B, T, R)
        # bridge_attention: each word's similarity to each region, scaled, is a prior on hop 1's scores.
        prior = self.bridge_scale * sims if self.bridge_scale is not None and sims is not None else None  # (B, T, R)
        if self.audio is not None or (self.training and sims is None):
            # Questions differ in length (spoken ones a lot; typed ones by the filler frames): sorted longest first,
            # each step runs only on those still being read. Typed questions take this path only in training (about a
            # third fewer rows in the step loop); answering keeps the masked loop below, so shipped text checkpoints give
            # bit-identical answers and maps.
            order = mask.sum(1).argsort(descending=True, stable=True)  # (B,)
            mask = mask[order]
            hiddens_t, hop_attention, inputs_t = self._read_packed(tokens[order], mask, memory.select(order), h[order], None if c is None else c[order])
        else:
            order = None
            hiddens_t, hop_attention, inputs_t = self._read_masked(tokens, mask, memory, h, c, sims, prior)
        scores = self.step_score(hiddens_t).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        step_attention = scores.softmax(dim=-1)  # (B, T)
        pooled = torch.einsum("bt,bth->bh", step_attention, hiddens_t)  # (B, H)
        pooled_in = torch.einsum("bt,btf->bf", step_attention, inputs_t)  # (B, F)
        logits = self.head(torch.cat([pooled, pooled_in], dim=-1))  # (B, C)
        if order is not None:  # back to the caller's order
            back = order.argsort()
            logits, hop_attention, step_attention, hiddens_t, mask = (x[back] for x in (logits, hop_attention, step_attention, hiddens_t, mask))
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        heard = self.heard(hiddens_t) if self.heard is not None else None  # (B, T, C)
        return ModelOutput(logits, hop_attention[:, :, 0], hop_attention, step_attention, hiddens_t, loss, mask, heard)


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
