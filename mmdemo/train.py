"""The one training loop: AdamW, linear warm-up then cosine decay, gradient clipping at 5, a progress bar,
running loss and accuracy, resumable state, and the checkpoint at the end.

A task supplies what differs (mmdemo.tasks.sort_of_clevr.train: generated scenes and their questions;
mmdemo.tasks.matching.pairs: image-text pairs from a manifest): what one epoch holds, how a step's items
become a batch, and the batch's loss. The same loop runs as one process or as many under torchrun
(mmdemo.distributed): every rank takes its shard of each global batch, so the steps are those of one
process; runs stop cleanly on Ctrl-C or SIGTERM and continue with --resume (mmdemo.resume).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mmdemo import distributed
from mmdemo.checkpoint import save_checkpoint
from mmdemo.config import TrainConfig
from mmdemo.model import FusionRNN, ModelOutput, pick_device
from mmdemo.resume import StopRequest, load_state, remove_state, save_at

# TrainConfig fields that name places on the machine that trained, not what was trained: never saved in config.json.
MACHINE_FIELDS = ("out", "resume", "spoken_data")


class Task(Protocol):
    """What a task supplies to fit(). Items are whatever one epoch is made of (image indices, pairs)."""

    label: str  # shown on the progress bar
    unit: str  # what an item is, for the "too few to split" message under torchrun
    epoch_items: int  # items in one epoch
    per_step: int  # items in one global step
    log_decay: float  # of the running loss shown on the progress bar
    report_accuracy: bool  # show and log the running accuracy (False: it is logged as 0.0)

    def module(self, model: FusionRNN) -> nn.Module:
        """What DDP wraps: the module whose forward a step calls."""

    def warmup(self, total: int) -> int:
        """Warm-up steps of the learning-rate schedule for a run of `total` steps."""

    def epoch(self, rng: np.random.Generator) -> Sequence:
        """One epoch's items in order, drawn from rng (the only randomness of the epoch's order)."""

    def batch(self, items: Sequence, step: int) -> Any:
        """This rank's batch (on the device) for the items of one global step."""

    def loss(self, runner: nn.Module, batch: Any) -> tuple[ModelOutput, torch.Tensor]:
        """(model output, loss to minimise) for a batch; runs under autocast."""

    def totals(self, out: ModelOutput, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, targets) that the step's loss and accuracy are reported on."""


class Fit(NamedTuple):
    """What a finished run did: steps, seconds (all parts of a resumed run), the running log."""

    steps: int
    seconds: float
    log: StepLog


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


def fit(model: FusionRNN, task: Task, cfg: TrainConfig, run: dict, device: torch.device, progress: bool = True) -> Fit:
    """Train model (already on device, seeded by the caller) on task for cfg's budget; returns it in eval mode.

    run is the identity a --resume must match (mmdemo.resume.identity). Call it inside distributed.session."""
    world = distributed.world()
    distributed.check_split(smallest_step(task.epoch_items, task.per_step), task.unit)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(1, int(cfg.epochs * math.ceil(task.epoch_items / task.per_step)))
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    warmup = task.warmup(total)
    saved = load_state(cfg.resume, model, opt, run) if cfg.resume else {}
    order_rng = np.random.default_rng(cfg.seed)
    main = distributed.is_main()
    with StopRequest() as stop:
        runner = distributed.wrap(task.module(model), find_unused=model.cfg.modality != "both")
        step, skip, prior_seconds = saved.get("step", 0), saved.get("epoch_step", 0), saved.get("seconds", 0.0)
        if saved:
            order_rng.bit_generator.state = saved["epoch_rng"]  # the current epoch's order is drawn again
        log = StepLog(saved)
        started = time.time()
        bar = tqdm(total=total, initial=step, desc=f"train {task.label}", disable=not (progress and main), unit="step")
        while step < total:
            epoch_rng = order_rng.bit_generator.state
            items = task.epoch(order_rng)
            for start in range(skip * task.per_step, len(items), task.per_step):
                if step >= total:
                    break
                model.train()
                batch = task.batch(items[start : start + task.per_step], step)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, cfg.lr, warmup)
                with autocast(device, cfg.amp):
                    out, loss = task.loss(runner, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                step += 1
                logits, targets = task.totals(out, batch)
                step_loss, step_acc, seen, stopping = step_totals(out.loss, logits, targets, stop, device)
                logged = step % cfg.log_every == 0 or step == total
                log.update(step, step_loss, step_acc if task.report_accuracy else 0.0, seen, logged, task.log_decay)
                bar.update(1)
                if logged:
                    bar.set_postfix(loss=f"{log.loss:.3f}", **({"acc": f"{log.acc:.3f}"} if task.report_accuracy else {}))
                if stopping or (cfg.save_every and step % cfg.save_every == 0 and step < total):
                    position = {"step": step, "epoch_rng": epoch_rng, "epoch_step": start // task.per_step + 1,
                                "seconds": prior_seconds + time.time() - started, "world_size": world.size, **log.state()}
                    save_at(cfg.out, model, opt, run, position, main, stop if stopping else None, total, bar)
            skip = 0
        bar.close()
    model.eval()
    return Fit(step, prior_seconds + time.time() - started, log)


def train_record(cfg: TrainConfig) -> dict[str, Any]:
    """The training settings as config.json keeps them: no folder of the machine that trained."""
    record = {k: v for k, v in asdict(cfg).items() if k not in MACHINE_FIELDS}
    if record.get("init_image"):  # where the image encoder started: kept, as data_path names it
        record["init_image"] = data_path(record["init_image"])
    return record


def data_path(path: str | Path) -> str:
    """A data file as config.json names it: relative to the working directory, or just its name (no machine paths)."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name


def save_trained(model: FusionRNN, cfg: TrainConfig, result: Fit, device: torch.device,
                 counts: dict | None = None, about: dict | None = None, **extra: Any) -> None:
    """Write the checkpoint folder cfg.out (config.json records the run) and drop the resumable state (rank 0 only)."""
    if not distributed.is_main():
        return
    record = {**train_record(cfg), "steps": result.steps, **(counts or {}), "seconds": round(result.seconds, 1), **(about or {}),
              "world_size": distributed.world().size, "loss_log": result.log.loss_log}
    save_checkpoint(model, cfg.out, {"train": record, "train_device": str(device), **extra})
    remove_state(cfg.out)
