"""Training on Sort-of-CLEVR-NL: each image is encoded once per step and answers all its 20 questions."""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from mmdemo.batch import images_to_tensor, pad_token_ids
from mmdemo.checkpoint import save_checkpoint, write_metrics
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.data import sort_of_clevr as soc
from mmdemo.model import FusionRNN, pick_device
from mmdemo.supervision import attention_loss, attention_targets
from mmdemo.text import tokenize


class QuestionBatch:
    """N images and their questions, as tensors. image_index (B,) maps each question to its image."""

    def __init__(self, images: np.ndarray, questions: list[list[soc.Question]], cfg: ModelConfig) -> None:
        flat = [q for qs in questions for q in qs]
        ids, _ = tokenize([q.text for q in flat], cfg.max_tokens)
        self.images = images_to_tensor(images)  # (N, 3, H, W)
        self.token_ids, self.token_mask = pad_token_ids(ids)  # (B, T)
        self.image_index = torch.tensor([i for i, qs in enumerate(questions) for _ in qs])  # (B,)
        self.targets = torch.tensor([cfg.labels.index(q.answer) for q in flat])  # (B,)
        self.questions = flat

    def to(self, device: torch.device) -> QuestionBatch:
        for name in ("images", "token_ids", "token_mask", "image_index", "targets"):
            setattr(self, name, getattr(self, name).to(device))
        return self


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
    model = FusionRNN(model_cfg).to(device).train()
    # Every distinct training sentence's frozen states stay cached (~50k with frames, ~1 GB): each is computed once.
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
            # Fresh wordings every time an image comes round: more paraphrase variety than fixed questions.
            q_rng = np.random.default_rng([cfg.seed, step])
            questions = [soc.make_questions(samples[i].scene, q_rng, "train", cfg.frames) for i in idx]
            batch = QuestionBatch(images[idx], questions, model_cfg).to(device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, cfg.lr)
            out = model(batch.images, batch.token_ids, batch.token_mask, batch.image_index, batch.targets)
            loss = out.loss
            if supervise:
                scenes = [samples[idx[i]].scene for i in batch.image_index.tolist()]
                targets = attention_targets(batch.token_ids.cpu(), batch.questions, scenes, model_cfg.grid)
                loss = loss + cfg.attn_supervision * attention_loss(out.hop_attention, targets, batch.token_mask if cfg.attn_hold else None)
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
    metrics = evaluate_model(model, device)
    metrics["train_seconds"] = round(seconds, 1)
    write_metrics(cfg.out, metrics)
    return model, metrics
