"""Training on Sort-of-CLEVR-NL: each image is encoded once per step and answers its questions, typed or spoken.

The same loop runs as one process or as many under torchrun (mmdemo.distributed): every rank takes its
shard of each global batch of images, so the steps are those of one process; runs stop cleanly on Ctrl-C
or SIGTERM and continue with --resume (mmdemo.resume).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from mmdemo import distributed
from mmdemo.audio import time_to_step
from mmdemo.batch import images_to_tensor, pad_frames, pad_token_ids
from mmdemo.checkpoint import save_checkpoint, write_metrics
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.data import sort_of_clevr as soc
from mmdemo.model import FusionRNN, pick_device
from mmdemo.resume import StopRequest, identity, load_state, remove_state, save_at
from mmdemo.supervision import attention_loss_terms, attention_targets, colour_step
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


class Drawn(NamedTuple):
    """One image's training questions for a step; spoken: also the pool utterance that voices each."""

    questions: list[soc.Question]
    utterances: list[int] | None = None


def balanced(questions: list[soc.Question], count: int) -> list[soc.Question]:
    """The first count // 2 non-relational and the rest relational of make_questions' 20 (all 20: unchanged)."""
    half = len(questions) // 2
    return questions[: count // 2] + questions[half : half + count - count // 2]


class TypedQuestions:
    """Fresh training paraphrases every time an image comes round: more variety than fixed questions."""

    def __init__(self, model_cfg: ModelConfig, cfg: TrainConfig) -> None:
        self.model_cfg, self.frames, self.count = model_cfg, cfg.frames, cfg.questions_per_image

    def draw(self, scenes: list[soc.Scene], rng: np.random.Generator) -> list[Drawn]:
        """Each scene's questions (drawn for the whole global batch, so every rank consumes rng alike)."""
        return [Drawn(balanced(soc.make_questions(scene, rng, "train", self.frames), self.count)) for scene in scenes]

    def make(self, images: np.ndarray, drawn: list[Drawn]) -> QuestionBatch:
        return QuestionBatch(images, [d.questions for d in drawn], self.model_cfg)

    def batch(self, images: np.ndarray, scenes: list[soc.Scene], rng: np.random.Generator) -> QuestionBatch:
        return self.make(images, self.draw(scenes, rng))


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

    def draw(self, scenes: list[soc.Scene], rng: np.random.Generator) -> list[Drawn]:
        """Each scene's utterances and their questions (drawn for the whole global batch, like TypedQuestions)."""
        drawn = []
        for scene in scenes:
            ids = [*rng.choice(self.by_family["nonrelational"], self.count // 2), *rng.choice(self.by_family["relational"], self.count - self.count // 2)]
            us = [self.pool.utterances[i] for i in ids]
            questions = [soc.Question(u.text, soc.answer(scene, u.subtype, u.colour, u.negate), u.family, u.subtype, u.colour, u.template) for u in us]
            drawn.append(Drawn(questions, [int(i) for i in ids]))
        return drawn

    def make(self, images: np.ndarray, drawn: list[Drawn]) -> SpokenBatch:
        return SpokenBatch(images, [d.questions for d in drawn], [d.utterances for d in drawn], self.pool, self.model_cfg)

    def batch(self, images: np.ndarray, scenes: list[soc.Scene], rng: np.random.Generator) -> SpokenBatch:
        return self.make(images, self.draw(scenes, rng))


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
                # Fresh questions every time an image comes round: more variety than fixed questions.
                # Every rank draws the whole global batch's questions, as one process does, and keeps its shard's.
                q_rng = np.random.default_rng([cfg.seed, step])
                drawn = source.draw([samples[i].scene for i in idx], q_rng)
                global_questions = sum(len(d.questions) for d in drawn)
                mine = distributed.shard(len(idx))
                idx, drawn = idx[mine], drawn[mine]
                batch = source.make(images[idx], drawn).to(device)
                # This rank's share of the global mean (DDP averages over ranks): exactly 1.0 with one process.
                share = len(batch.targets) * world.size / global_questions
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, cfg.lr)
                with autocast(device, cfg.amp):
                    out = runner(batch.images, batch.question, batch.question_mask, batch.image_index, batch.targets)
                    loss = out.loss * share
                    if supervise:
                        scenes = [samples[idx[i]].scene for i in batch.image_index.tolist()]
                        targets = attention_targets(None, batch.questions, scenes, model_cfg.grid, steps=batch.colour_steps())
                        attn_sum, attn_count = attention_loss_terms(out.hop_attention, targets, out.step_mask if cfg.attn_hold else None)
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
                    save_at(cfg.out, model, opt, run, position, main, stop if stopping else None, total, bar)
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
    test = soc.test_split()[: cfg.eval_images]
    metrics = evaluate_model(model, device, test, spoken_data=cfg.spoken_data, synth_workers=cfg.synth_workers, progress=progress)
    metrics["train_seconds"] = round(seconds, 1)
    write_metrics(cfg.out, metrics)
    return model, metrics
