"""Training on Sort-of-CLEVR-NL: each image is encoded once per step and answers its questions, typed or spoken."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from mmdemo.audio import time_to_step
from mmdemo.batch import images_to_tensor, pad_frames, pad_token_ids
from mmdemo.checkpoint import METRICS, save_checkpoint
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.data import sort_of_clevr as soc
from mmdemo.model import FusionRNN, pick_device
from mmdemo.supervision import attention_loss, attention_targets, colour_step
from mmdemo.text import tokenize

if TYPE_CHECKING:
    from mmdemo.data.spoken import SpokenPool


class QuestionBatch:
    """N images and their typed questions, as tensors. image_index (B,) maps each question to its image."""

    def __init__(self, images: np.ndarray, questions: list[list[soc.Question]], cfg: ModelConfig) -> None:
        flat = [q for qs in questions for q in qs]
        ids, _ = tokenize([q.text for q in flat], cfg.max_tokens)
        self.images = images_to_tensor(images)  # (N, 3, H, W)
        self.token_ids, self.token_mask = pad_token_ids(ids)  # (B, T)
        self.image_index = torch.tensor([i for i, qs in enumerate(questions) for _ in qs])  # (B,)
        self.targets = torch.tensor([cfg.labels.index(q.answer) for q in flat])  # (B,)
        self.questions = flat

    @property
    def question(self) -> torch.Tensor:
        return self.token_ids

    @property
    def question_mask(self) -> torch.Tensor:
        return self.token_mask

    def colour_steps(self) -> list[int]:
        """The step that reads each question's colour word (-1: none)."""
        return [colour_step(row) for row in self.token_ids.tolist()]

    def to(self, device: torch.device) -> QuestionBatch:
        for name in ("images", "token_ids", "token_mask", "image_index", "targets"):
            setattr(self, name, getattr(self, name).to(device))
        return self


class SpokenBatch:
    """N images and their spoken questions: log-mel frames from a SpokenPool (utterances[i] voices questions[i])."""

    def __init__(self, images: np.ndarray, questions: list[list[soc.Question]], utterances: list[list[int]], pool: SpokenPool, cfg: ModelConfig) -> None:
        flat = [q for qs in questions for q in qs]
        ids = [u for us in utterances for u in us]
        self.images = images_to_tensor(images)  # (N, 3, H, W)
        self.frames, self.frame_mask = pad_frames([pool.frames(u) for u in ids])  # (B, L, M), (B, L)
        self.image_index = torch.tensor([i for i, qs in enumerate(questions) for _ in qs])  # (B,)
        self.targets = torch.tensor([cfg.labels.index(q.answer) for q in flat])  # (B,)
        self.questions = flat
        self.colour_ends = [float(pool.colour_ends[u]) for u in ids]  # seconds; -1 = not found
        self.num_steps = [math.ceil((pool.offsets[u + 1] - pool.offsets[u]) / cfg.audio_stride) for u in ids]
        self.step_seconds = cfg.step_seconds

    @property
    def question(self) -> torch.Tensor:
        return self.frames

    @property
    def question_mask(self) -> torch.Tensor:
        return self.frame_mask

    def colour_steps(self) -> list[int]:
        """The first step that has heard each question's whole colour word (-1: none)."""
        return [min(time_to_step(e, self.step_seconds), n - 1) if e >= 0 else -1 for e, n in zip(self.colour_ends, self.num_steps)]

    def to(self, device: torch.device) -> SpokenBatch:
        for name in ("images", "frames", "frame_mask", "image_index", "targets"):
            setattr(self, name, getattr(self, name).to(device))
        return self


def balanced(questions: list[soc.Question], count: int) -> list[soc.Question]:
    """The first count // 2 non-relational and the rest relational of make_questions' 20 (all 20: unchanged)."""
    half = len(questions) // 2
    return questions[: count // 2] + questions[half : half + count - count // 2]


class TypedQuestions:
    """Fresh training paraphrases every time an image comes round: more variety than fixed questions."""

    def __init__(self, model_cfg: ModelConfig, cfg: TrainConfig) -> None:
        self.model_cfg, self.frames, self.count = model_cfg, cfg.frames, cfg.questions_per_image

    def batch(self, images: np.ndarray, scenes: list[soc.Scene], rng: np.random.Generator) -> QuestionBatch:
        questions = [balanced(soc.make_questions(scene, rng, "train", self.frames), self.count) for scene in scenes]
        return QuestionBatch(images, questions, self.model_cfg)


class SpokenQuestions:
    """Utterances drawn from the synthesized pool: the audio depends only on the question, so any utterance
    fits any scene, and its answer is worked out for the scene at hand."""

    def __init__(self, pool: SpokenPool, model_cfg: ModelConfig, count: int) -> None:
        self.pool, self.model_cfg, self.count = pool, model_cfg, count
        families = [u.family for u in pool.utterances]
        self.by_family = {f: np.array([i for i, x in enumerate(families) if x == f]) for f in ("nonrelational", "relational")}

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, cfg: TrainConfig, progress: bool) -> SpokenQuestions:
        """The training pool (synthesizing into cfg.spoken_data what is not cached yet)."""
        from mmdemo.data import spoken

        plan = spoken.plan_train(cfg.spoken_utterances, cfg.seed, cfg.frames)
        pool = spoken.load_pool(plan, cfg.spoken_data, "train", spoken.feature_settings(model_cfg), cfg.synth_workers, progress)
        return cls(pool, model_cfg, cfg.questions_per_image)

    def batch(self, images: np.ndarray, scenes: list[soc.Scene], rng: np.random.Generator) -> SpokenBatch:
        questions, picks = [], []
        for scene in scenes:
            ids = [*rng.choice(self.by_family["nonrelational"], self.count // 2), *rng.choice(self.by_family["relational"], self.count - self.count // 2)]
            us = [self.pool.utterances[i] for i in ids]
            questions.append([soc.Question(u.text, soc.answer(scene, u.subtype, u.colour, u.negate), u.family, u.subtype, u.colour, u.template) for u in us])
            picks.append([int(i) for i in ids])
        return SpokenBatch(images, questions, picks, self.pool, self.model_cfg)


TRAIN_TEXT_CACHE_ITEMS = 65536  # contextual text states kept while training: every distinct sentence (~50k with frames)


def lr_at(step: int, total: int, peak: float, warmup: int = 200) -> float:
    """Linear warm-up then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def train(model_cfg: ModelConfig, cfg: TrainConfig, progress: bool = True) -> tuple[FusionRNN, dict]:
    """Train, save a checkpoint folder to cfg.out, evaluate it there; returns (model, metrics)."""
    from mmdemo.evaluate import evaluate_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    order_rng = np.random.default_rng(cfg.seed)
    samples = soc.generate("train", cfg.train_images, seed=cfg.seed, wording="train", augment=True)
    images = np.stack([s.image for s in samples])  # (N, 75, 75, 3)
    audio = model_cfg.question_input == "audio"
    source = SpokenQuestions.from_config(model_cfg, cfg, progress) if audio else TypedQuestions(model_cfg, cfg)
    model = FusionRNN(model_cfg).to(device).train()
    if model.text is not None:  # every distinct training sentence's frozen states stay cached (~50k with frames, ~1 GB)
        model.text.cache_size = TRAIN_TEXT_CACHE_ITEMS
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(cfg.train_images / cfg.batch_images)
    total = max(1, int(cfg.epochs * steps_per_epoch))
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    supervise = model_cfg.fusion == "attention" and cfg.attn_supervision > 0
    started, step, seen = time.time(), 0, 0
    bar = tqdm(total=total, desc=f"train {model_cfg.fusion}-{model_cfg.cell}", disable=not progress, unit="step")
    running_loss, running_acc = 0.0, 0.0
    while step < total:
        perm = order_rng.permutation(cfg.train_images)
        for start in range(0, len(perm), cfg.batch_images):
            if step >= total:
                break
            idx = perm[start : start + cfg.batch_images]
            # Fresh questions every time an image comes round: more variety than fixed questions.
            q_rng = np.random.default_rng([cfg.seed, step])
            batch = source.batch(images[idx], [samples[i].scene for i in idx], q_rng).to(device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, cfg.lr)
            out = model(batch.images, batch.question, batch.question_mask, batch.image_index, batch.targets)
            loss = out.loss
            if supervise:
                scenes = [samples[idx[i]].scene for i in batch.image_index.tolist()]
                targets = attention_targets(None, batch.questions, scenes, model_cfg.grid, steps=batch.colour_steps())
                loss = loss + cfg.attn_supervision * attention_loss(out.hop_attention, targets, out.step_mask if cfg.attn_hold else None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            seen += len(batch.targets)
            acc = (out.logits.argmax(-1) == batch.targets).float().mean().item()
            running_loss = 0.98 * running_loss + 0.02 * out.loss.item() if step > 1 else out.loss.item()
            running_acc = 0.98 * running_acc + 0.02 * acc if step > 1 else acc
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                bar.set_postfix(loss=f"{running_loss:.3f}", acc=f"{running_acc:.3f}")
    bar.close()
    seconds = time.time() - started
    model.eval()
    extra = {
        "train": {**asdict(cfg), "steps": step, "questions_seen": seen, "seconds": round(seconds, 1)},
        "train_device": str(device),
    }
    save_checkpoint(model, cfg.out, extra)
    test = soc.test_split()[: cfg.eval_images]
    metrics = evaluate_model(model, device, test, spoken_data=cfg.spoken_data, synth_workers=cfg.synth_workers, progress=progress)
    metrics["train_seconds"] = round(seconds, 1)
    Path(cfg.out, METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    return model, metrics
