"""Training on Sort-of-CLEVR-NL: each image is encoded once per step and answers its questions, typed or spoken.

What the task gives mmdemo.train.fit: an epoch is a permutation of the training images; every step draws
fresh questions for its images (seeded by the step, the whole global batch on every rank) and adds the
attention-supervision loss (attention fusion). Evaluation on the test split is the caller's (the CLI).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmdemo import distributed
from mmdemo.checkpoint import copy_image_encoder, image_encoder_source
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.model import FusionRNN, ModelOutput
from mmdemo.resume import identity
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import QuestionBatch, SpokenBatch, SpokenQuestions, TypedQuestions
from mmdemo.tasks.sort_of_clevr.hearing import HEARD, KINDS, heard_kind
from mmdemo.tasks.sort_of_clevr.supervision import attention_loss_terms, attention_targets
from mmdemo.train import Fit, fit, save_trained, smallest_step, training_device

TRAIN_TEXT_CACHE_ITEMS = 262144  # contextual text states kept while training: every distinct sentence (59,478 in the first 500,000 questions with dropped words; the run peaks at 6.4 GB)


class SceneStep(NamedTuple):
    """One rank's share of a global step: the batch, the scene of each of its images, its share of the mean."""

    batch: QuestionBatch | SpokenBatch
    scenes: list[soc.Scene]
    share: float


class SceneTask:
    """Generated scenes and their questions, as mmdemo.train.fit wants them."""

    unit, log_decay, report_accuracy = "images", 0.98, True

    def __init__(self, samples: list[soc.Sample], source: TypedQuestions | SpokenQuestions, model_cfg: ModelConfig,
                 cfg: TrainConfig, device: torch.device) -> None:
        self.samples, self.source, self.model_cfg, self.cfg, self.device = samples, source, model_cfg, cfg, device
        self.images = np.stack([s.image for s in samples])  # (N, 75, 75, 3)
        self.label = f"{model_cfg.fusion}-{model_cfg.cell}"
        self.epoch_items, self.per_step = cfg.train_images, cfg.batch_images
        self.supervise = model_cfg.has_region_attention and cfg.attn_supervision > 0

    def module(self, model: FusionRNN) -> nn.Module:
        return model

    def warmup(self, total: int) -> int:
        return 200

    def epoch(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(self.cfg.train_images)

    def batch(self, idx: np.ndarray, step: int) -> SceneStep:
        # Fresh questions every time an image comes round: more variety than fixed questions.
        # Every rank draws the whole global batch's questions, as one process does, and keeps its shard's.
        q_rng = np.random.default_rng([self.cfg.seed, step])
        drawn = self.source.draw([self.samples[i].scene for i in idx], q_rng)
        global_questions = sum(len(d.questions) for d in drawn)
        mine = distributed.shard(len(idx))
        idx, drawn = idx[mine], drawn[mine]
        batch = self.source.make(self.images[idx], drawn).to(self.device)
        scenes = [self.samples[idx[i]].scene for i in batch.image_index.tolist()] if self.supervise else []
        # This rank's share of the global mean (DDP averages over ranks): exactly 1.0 with one process.
        return SceneStep(batch, scenes, len(batch.targets) * distributed.world().size / global_questions)

    def loss(self, runner: nn.Module, step: SceneStep) -> tuple[ModelOutput, torch.Tensor]:
        batch = step.batch
        out = runner(batch.images, batch.question, batch.question_mask, batch.image_index, batch.targets)
        loss = out.loss * step.share
        if self.supervise:
            targets = attention_targets(None, batch.questions, step.scenes, self.model_cfg.grid, steps=batch.colour_steps())
            attn_sum, attn_count = attention_loss_terms(
                out.hop_attention, targets, out.step_mask, wait=self.cfg.attn_wait,
                hold=(self.cfg.attn_hold, self.cfg.attn_hold_answer))
            # Divided by the global number of supervised pairs: the attention loss of the whole batch.
            attn = attn_sum / distributed.all_reduce_sum(attn_count).clamp(min=1.0) * distributed.world().size
            loss = loss + self.cfg.attn_supervision * attn
        if out.heard is not None and self.cfg.heard_supervision > 0:
            loss = loss + self.cfg.heard_supervision * heard_loss(out, batch) * step.share
        return out, loss

    def totals(self, out: ModelOutput, step: SceneStep) -> tuple[torch.Tensor, torch.Tensor]:
        return out.logits, step.batch.targets


class Heard(NamedTuple):
    """What the heard head says and what it should say: the colour at the step that has heard the colour word
    (questions whose colour word was found), the question kind and side at the last step."""

    colour_logits: torch.Tensor  # (F, colours)
    colour_target: torch.Tensor  # (F,)
    kind_logits: torch.Tensor  # (B, kinds)
    kind_target: torch.Tensor  # (B,)


def heard(out: ModelOutput, batch: SpokenBatch) -> Heard:
    """The heard head's outputs at the steps it is asked about, with their targets (heard_loss; heard_probe)."""
    logits = out.heard  # (B, T, C)
    rows = torch.arange(logits.shape[0], device=logits.device)
    colours = len(soc.COLOURS)
    steps = torch.tensor(batch.colour_steps(), device=logits.device)  # (B,) -1 = colour word not found
    found = steps >= 0
    colour_target = torch.tensor([HEARD.index(q.colour) for q in batch.questions], device=logits.device)
    kind_target = torch.tensor([KINDS.index(heard_kind(q.subtype, n)) for q, n in zip(batch.questions, batch.negates)], device=logits.device)
    last = out.step_mask.sum(1) - 1  # (B,)
    return Heard(logits[rows[found], steps[found], :colours], colour_target[found], logits[rows, last, colours:], kind_target)


def heard_loss(out: ModelOutput, batch: SpokenBatch) -> torch.Tensor:
    """Cross-entropy of what the state says was heard: the colour at every step from the one that has heard the
    colour word to the end (so the last step still names it: the app's "what I heard"), the question kind and
    side at the last step (keyword spotting, to help the front-end find the words that matter)."""
    h = heard(out, batch)
    loss = F.cross_entropy(h.kind_logits, h.kind_target)
    steps = torch.tensor(batch.colour_steps(), device=out.heard.device)  # (B,) -1 = colour word not found
    t = torch.arange(out.heard.shape[1], device=out.heard.device)
    held = (t[None] >= steps[:, None]) & (steps[:, None] >= 0) & out.step_mask  # (B, T)
    if held.any():
        colour_target = torch.tensor([HEARD.index(q.colour) for q in batch.questions], device=out.heard.device)
        logits = out.heard[..., : len(soc.COLOURS)][held]  # (N, colours)
        loss = loss + F.cross_entropy(logits, colour_target[:, None].expand_as(held)[held])
    return loss


def train(model_cfg: ModelConfig, cfg: TrainConfig, progress: bool = True) -> tuple[FusionRNN, Fit]:
    """Train and save a checkpoint folder to cfg.out (rank 0); returns (model in eval mode, what the run did)."""
    if model_cfg.heard_classes not in (0, len(HEARD)):
        raise ValueError(f"--heard-classes must be 0 (no heard head) or {len(HEARD)} (the {len(soc.COLOURS)} colours and {len(KINDS)} question kinds it names)")
    # e.g. the spoken preset: a typed model's image encoder (hop2-unheld's), which already tells colours and shapes apart
    image_source = image_encoder_source(cfg.init_image, model_cfg) if cfg.init_image else None
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = training_device(cfg)
    distributed.check_split(smallest_step(cfg.train_images, cfg.batch_images), "images")  # before the scenes are made
    torch.manual_seed(cfg.seed)
    samples = soc.generate("train", cfg.train_images, seed=cfg.seed, wording="train", augment=True)
    audio = model_cfg.question_input == "audio"
    source = SpokenQuestions.from_config(model_cfg, cfg, progress) if audio else TypedQuestions(model_cfg, cfg)
    model = FusionRNN(model_cfg)
    if image_source is not None:
        copy_image_encoder(model, image_source)
        del image_source
    model = model.to(device).train()
    if model.text is not None:  # every distinct training sentence's frozen states stay cached
        model.text.cache_size, model.text.length_buckets = TRAIN_TEXT_CACHE_ITEMS, True
    task = SceneTask(samples, source, model_cfg, cfg, device)
    with distributed.session(device):
        result = fit(model, task, cfg, identity(model_cfg, cfg, task="sort-of-clevr"), device, progress)
    save_trained(model, cfg, result, device, counts={"questions_seen": result.log.seen})
    return model, result
