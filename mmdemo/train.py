"""Training on Sort-of-CLEVR-NL: each image is encoded once per step and answers all its 20 questions.

The same loop runs as one process or as many under torchrun (mmdemo.distributed): every rank takes its
shard of each global batch of images, so the steps are those of one process; runs stop cleanly on Ctrl-C
or SIGTERM and continue with --resume (mmdemo.resume).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from mmdemo import distributed
from mmdemo.batch import images_to_tensor, pad_token_ids
from mmdemo.checkpoint import save_checkpoint, write_metrics
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.data import sort_of_clevr as soc
from mmdemo.model import FusionRNN, pick_device
from mmdemo.resume import Interrupted, StopRequest, identity, load_state, remove_state, save_state
from mmdemo.supervision import attention_loss_terms, attention_targets
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


def training_device(cfg: TrainConfig) -> torch.device:
    """cfg.device, this rank's GPU under torchrun; --amp bf16 only where it runs (CPU stays exact fp32)."""
    device = pick_device(cfg.device)
    if device.type == "cuda" and distributed.world().size > 1:
        local_rank = distributed.world().local_rank
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"process {local_rank} on this machine but only {torch.cuda.device_count()} GPU(s): one process per GPU (--nproc_per_node)")
        device = torch.device("cuda", local_rank)
    if cfg.amp not in ("off", "bf16"):
        raise ValueError(f"--amp must be off or bf16, got {cfg.amp!r}")
    if cfg.amp == "bf16" and device.type != "cuda":
        raise ValueError("--amp bf16 needs a GPU (--device cuda); CPU training stays exact fp32")
    if cfg.amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"--amp bf16: {torch.cuda.get_device_name(device)} has no bfloat16; train without --amp")
    return device


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward pass and loss with --amp bf16; nothing at all otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp == "bf16" else contextlib.nullcontext()


def smallest_step(items: int, per_step: int) -> int:
    """The fewest items any step of an epoch gets (the last step takes what is left)."""
    return min(per_step, items, items % per_step or per_step)


class StepLog:
    """Running figures of the global batch (the same on every rank), and the loss_log saved in config.json."""

    def __init__(self, saved: dict | None = None) -> None:
        saved = saved or {}
        self.loss, self.acc = saved.get("running", (0.0, 0.0))
        self.seen = saved.get("seen", 0)
        self.loss_log: list = saved.get("loss_log", [])

    def update(self, step: int, loss: float, acc: float, items: int, log: bool, decay: float) -> None:
        self.loss = decay * self.loss + (1 - decay) * loss if step > 1 else loss
        self.acc = decay * self.acc + (1 - decay) * acc if step > 1 else acc
        self.seen += items
        if log:
            self.loss_log.append([step, round(loss, 6)])

    def state(self) -> dict:
        return {"running": [self.loss, self.acc], "seen": self.seen, "loss_log": self.loss_log}


def step_totals(loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, stop: StopRequest, device: torch.device) -> tuple[float, float, int, bool]:
    """(loss, accuracy, items) of the global batch and whether any rank was asked to stop: one collective."""
    n = len(targets)
    local = torch.tensor([loss.item() * n, (logits.argmax(-1) == targets).sum().item(), n, stop.signum is not None], dtype=torch.float64, device=device)
    loss_sum, correct, items, stops = distributed.all_reduce_sum(local).tolist()
    return loss_sum / items, correct / items, int(items), stops > 0


def train(model_cfg: ModelConfig, cfg: TrainConfig, progress: bool = True) -> tuple[FusionRNN, dict]:
    """Train, save a checkpoint folder to cfg.out, evaluate it there; returns (model, metrics).

    Under torchrun only rank 0 writes and evaluates; the other ranks return (model, {})."""
    from mmdemo.evaluate import evaluate_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world = distributed.world()
    device = training_device(cfg)
    distributed.check_split(smallest_step(cfg.train_images, cfg.batch_images), "images")
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
    run = identity(model_cfg, cfg, task="sort-of-clevr")
    saved = load_state(cfg.resume, model, opt, run) if cfg.resume else {}
    supervise = model_cfg.fusion == "attention" and cfg.attn_supervision > 0
    main = distributed.is_main()
    with distributed.session(device), StopRequest() as stop:
        runner = distributed.wrap(model, find_unused=model_cfg.modality != "both")
        step, skip, prior_seconds = saved.get("step", 0), saved.get("epoch_step", 0), saved.get("seconds", 0.0)
        if saved:
            order_rng.bit_generator.state = saved["epoch_rng"]  # the current epoch's order is drawn again
        log = StepLog(saved)
        started = time.time()
        bar = tqdm(total=total, initial=step, desc=f"train {model_cfg.fusion}-{model_cfg.cell}", disable=not (progress and main), unit="step")
        while step < total:
            epoch_rng = order_rng.bit_generator.state
            perm = order_rng.permutation(cfg.train_images)
            for start in range(skip * cfg.batch_images, len(perm), cfg.batch_images):
                if step >= total:
                    break
                idx = perm[start : start + cfg.batch_images]
                # Fresh wordings every time an image comes round: more paraphrase variety than fixed questions.
                # Every rank draws the whole global batch's questions, as one process does, and keeps its shard's.
                q_rng = np.random.default_rng([cfg.seed, step])
                questions = [soc.make_questions(samples[i].scene, q_rng, "train", cfg.frames) for i in idx]
                global_questions = sum(len(qs) for qs in questions)
                mine = distributed.shard(len(idx))
                idx, questions = idx[mine], questions[mine]
                batch = QuestionBatch(images[idx], questions, model_cfg).to(device)
                # This rank's share of the global mean (DDP averages over ranks): exactly 1.0 with one process.
                share = len(batch.targets) * world.size / global_questions
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, cfg.lr)
                with autocast(device, cfg.amp):
                    out = runner(batch.images, batch.token_ids, batch.token_mask, batch.image_index, batch.targets)
                    loss = out.loss * share
                    if supervise:
                        scenes = [samples[idx[i]].scene for i in batch.image_index.tolist()]
                        targets = attention_targets(batch.token_ids.cpu(), batch.questions, scenes, model_cfg.grid)
                        attn_sum, attn_count = attention_loss_terms(out.hop_attention, targets, batch.token_mask if cfg.attn_hold else None)
                        # Divided by the global number of supervised pairs: the attention loss of the whole batch.
                        attn = attn_sum / distributed.all_reduce_sum(attn_count).clamp(min=1.0) * world.size
                        loss = loss + cfg.attn_supervision * attn
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                step += 1
                step_loss, step_acc, items, stopping = step_totals(out.loss, out.logits, batch.targets, stop, device)
                log.update(step, step_loss, step_acc, items, step % cfg.log_every == 0 or step == total, 0.98)
                bar.update(1)
                if step % cfg.log_every == 0 or step == total:
                    bar.set_postfix(loss=f"{log.loss:.3f}", acc=f"{log.acc:.3f}")
                if stopping or (cfg.save_every and step % cfg.save_every == 0 and step < total):
                    position = {"step": step, "epoch_rng": epoch_rng, "epoch_step": start // cfg.batch_images + 1,
                                "seconds": prior_seconds + time.time() - started, "world_size": world.size, **log.state()}
                    if main:
                        save_state(cfg.out, model, opt, run, position)
                    if stopping:
                        distributed.barrier()  # every rank leaves after the state is on disk
                        bar.close()
                        raise Interrupted(stop.signum or 15, step, total, cfg.out)
            skip = 0
        bar.close()
    seconds = prior_seconds + time.time() - started
    model.eval()
    if not main:
        return model, {}
    extra = {
        "train": {**asdict(cfg), "steps": step, "questions_seen": log.seen, "seconds": round(seconds, 1), "world_size": world.size, "loss_log": log.loss_log},
        "train_device": str(device),
    }
    save_checkpoint(model, cfg.out, extra)
    remove_state(cfg.out)
    if not cfg.evaluate:
        return model, {}
    metrics = evaluate_model(model, device)
    metrics["train_seconds"] = round(seconds, 1)
    write_metrics(cfg.out, metrics)
    return model, metrics
