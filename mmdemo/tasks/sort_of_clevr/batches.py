"""Sort-of-CLEVR-NL batches: N images and their questions (typed or spoken) as tensors, and the question
sources training draws from (fresh paraphrases, or utterances from the synthesized pool)."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, NamedTuple, Self

import numpy as np
import torch

from mmdemo import distributed
from mmdemo.audio import time_to_step
from mmdemo.config import ModelConfig, TrainConfig
from mmdemo.processing import images_to_tensor, pad_frames, pad_token_ids
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import mel_augment
from mmdemo.tasks.sort_of_clevr.supervision import colour_step
from mmdemo.text import tokenize

if TYPE_CHECKING:
    from mmdemo.tasks.sort_of_clevr.spoken import SpokenPool


class SceneBatch:
    """N images and their questions, as tensors. image_index (B,) maps each question to its image; a subclass
    names its question tensor (B, T[, M]) and mask (B, T) in QUESTION_FIELDS."""

    QUESTION_FIELDS: tuple[str, str]

    def __init__(self, images: np.ndarray, questions: list[list[soc.Question]], cfg: ModelConfig) -> None:
        self.questions = [q for qs in questions for q in qs]
        self.images = images_to_tensor(images)  # (N, 3, H, W)
        self.image_index = torch.tensor([i for i, qs in enumerate(questions) for _ in qs])  # (B,)
        self.targets = torch.tensor([cfg.labels.index(q.answer) for q in self.questions])  # (B,)

    @property
    def question(self) -> torch.Tensor:
        return getattr(self, self.QUESTION_FIELDS[0])

    @property
    def question_mask(self) -> torch.Tensor:
        return getattr(self, self.QUESTION_FIELDS[1])

    def to(self, device: torch.device) -> Self:
        for name in ("images", *self.QUESTION_FIELDS, "image_index", "targets"):
            setattr(self, name, getattr(self, name).to(device))
        return self


class QuestionBatch(SceneBatch):
    """N images and their typed questions: token_ids and token_mask (B, T)."""

    QUESTION_FIELDS = ("token_ids", "token_mask")

    def __init__(self, images: np.ndarray, questions: list[list[soc.Question]], cfg: ModelConfig,
                 token_cache: dict[str, list[int]] | None = None) -> None:
        super().__init__(images, questions, cfg)
        ids, _ = tokenize([q.text for q in self.questions], cfg.max_tokens, token_cache)
        self.token_ids, self.token_mask = pad_token_ids(ids)  # (B, T)

    def colour_steps(self) -> list[int]:
        """The step that reads each question's colour word (-1: none)."""
        return [colour_step(row) for row in self.token_ids.tolist()]


# SpecAugment (Park et al. 2019), sized for 40 mel bands and 10 ms frames: two time masks of up to 80 ms and
# two frequency masks of up to 6 bands, filled with the utterance's mean.
TIME_MASKS, MAX_TIME_MASK, FREQ_MASKS, MAX_FREQ_MASK = 2, 8, 2, 6


class Masks(NamedTuple):
    """SpecAugment masks for one utterance: (start, width) in frames and in mel bands."""

    time: list[tuple[int, int]]
    freq: list[tuple[int, int]]


def draw_masks(frames: int, bands: int, rng: np.random.Generator) -> Masks:
    def spans(count: int, widest: int, size: int) -> list[tuple[int, int]]:
        widths = rng.integers(0, widest + 1, count)
        return [(int(rng.integers(0, max(1, size - w))), int(w)) for w in widths]

    return Masks(spans(TIME_MASKS, MAX_TIME_MASK, frames), spans(FREQ_MASKS, MAX_FREQ_MASK, bands))


def masked(frames: np.ndarray, masks: Masks | None) -> np.ndarray:
    """frames (L, M) with the masks filled by their mean (a copy; the pool is never written)."""
    if masks is None:
        return frames
    out = frames.astype(np.float32)
    fill = float(out.mean()) if out.size else 0.0
    for start, width in masks.time:
        out[start : start + width] = fill
    for start, width in masks.freq:
        out[:, start : start + width] = fill
    return out


class SpokenBatch(SceneBatch):
    """N images and their spoken questions: log-mel frames from a SpokenPool (utterances[i] voices questions[i]),
    with a reverb tail or talk from the pool where those were drawn (mel_augment), then masked where SpecAugment
    drew masks."""

    QUESTION_FIELDS = ("frames", "frame_mask")

    def __init__(self, images: np.ndarray, questions: list[list[soc.Question]], utterances: list[list[int]], pool: SpokenPool, cfg: ModelConfig,
                 masks: list[list[Masks | None]] | None = None, mel: list[list[mel_augment.MelDraw | None]] | None = None) -> None:
        super().__init__(images, questions, cfg)
        ids = [u for us in utterances for u in us]
        flat_masks = [m for ms in masks for m in ms] if masks else [None] * len(ids)
        flat_mel = [d for ds in mel for d in ds] if mel else [None] * len(ids)
        hop_s = cfg.hop_ms / 1000
        frames = [masked(mel_augment.apply(pool.frames(u), d, pool.frames, hop_s), m) for u, d, m in zip(ids, flat_mel, flat_masks, strict=True)]
        self.frames, self.frame_mask = pad_frames(frames)  # (B, L, M), (B, L)
        self.colour_ends = [float(pool.colour_ends[u]) for u in ids]  # seconds; -1 = not found
        self.negates = [pool.utterances[u].negate for u in ids]  # a "right" / "bottom" wording (the heard head's side)
        self.num_steps = [math.ceil((pool.offsets[u + 1] - pool.offsets[u]) / cfg.audio_stride) for u in ids]
        self.step_seconds = cfg.step_seconds

    def colour_steps(self) -> list[int]:
        """The first step that has heard each question's whole colour word (-1: none)."""
        return [min(time_to_step(e, self.step_seconds), n - 1) if e >= 0 else -1 for e, n in zip(self.colour_ends, self.num_steps)]


class Drawn(NamedTuple):
    """One image's training questions for a step; spoken: also the pool utterance that voices each."""

    questions: list[soc.Question]
    utterances: list[int] | None = None
    masks: list[Masks | None] | None = None  # spoken: SpecAugment per utterance (None: unmasked)
    mel: list[mel_augment.MelDraw | None] | None = None  # spoken: reverb tail / talk from the pool per utterance


def balanced(questions: list[soc.Question], count: int) -> list[soc.Question]:
    """The first count // 2 non-relational and the rest relational of make_questions' 20 (all 20: unchanged)."""
    half = len(questions) // 2
    return questions[: count // 2] + questions[half : half + count - count // 2]


class TypedQuestions:
    """Fresh training paraphrases every time an image comes round: more variety than fixed questions."""

    def __init__(self, model_cfg: ModelConfig, cfg: TrainConfig) -> None:
        self.model_cfg, self.frames, self.word_drop, self.count = model_cfg, cfg.frames, cfg.word_drop, cfg.questions_per_image
        self.token_cache: dict[str, list[int]] = {}  # every distinct training sentence's ids (~40k short lists)

    def draw(self, scenes: list[soc.Scene], rng: np.random.Generator) -> list[Drawn]:
        """Each scene's questions (drawn for the whole global batch, so every rank consumes rng alike)."""
        return [Drawn(balanced(soc.make_questions(scene, rng, "train", self.frames, self.word_drop), self.count)) for scene in scenes]

    def make(self, images: np.ndarray, drawn: list[Drawn]) -> QuestionBatch:
        return QuestionBatch(images, [d.questions for d in drawn], self.model_cfg, self.token_cache)

    def batch(self, images: np.ndarray, scenes: list[soc.Scene], rng: np.random.Generator) -> QuestionBatch:
        return self.make(images, self.draw(scenes, rng))


class SpokenQuestions:
    """Utterances drawn from the synthesized pool: the audio depends only on the question, so any utterance
    fits any scene, and its answer is worked out for the scene at hand."""

    def __init__(self, pool: SpokenPool, model_cfg: ModelConfig, count: int, spec_augment: float = 0.0,
                 mel_reverb: float = 0.0, mel_babble: float = 0.0, mel_warp: float = 0.0) -> None:
        self.pool, self.model_cfg, self.count, self.spec_augment = pool, model_cfg, count, spec_augment
        self.mel_reverb, self.mel_babble, self.mel_warp = mel_reverb, mel_babble, mel_warp
        self.lengths = np.diff(pool.offsets)
        families = [u.family for u in pool.utterances]
        self.by_family = {f: np.array([i for i, x in enumerate(families) if x == f]) for f in ("nonrelational", "relational")}

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, cfg: TrainConfig, progress: bool) -> SpokenQuestions:
        """The training pool (synthesizing into cfg.spoken_data what is not cached yet)."""
        from mmdemo.tasks.sort_of_clevr import spoken

        plan = spoken.plan_train(cfg.spoken_utterances, cfg.seed, cfg.frames)
        # Under torchrun the processes on each machine share what is missing in its cache folder (and its CPUs).
        local_rank, local_size = distributed.world().local_rank, distributed.local_size()
        workers = cfg.synth_workers or max(1, (os.cpu_count() or 1) // local_size)
        pool = spoken.load_pool(plan, cfg.spoken_data, "train", spoken.feature_settings(model_cfg), workers,
                                progress and distributed.is_main(), (local_rank, local_size))
        return cls(pool, model_cfg, cfg.questions_per_image, cfg.spec_augment, cfg.mel_reverb, cfg.mel_babble, cfg.mel_warp)

    @property
    def mel_on(self) -> bool:
        return self.mel_reverb > 0 or self.mel_babble > 0 or self.mel_warp > 0

    def draw(self, scenes: list[soc.Scene], rng: np.random.Generator) -> list[Drawn]:
        """Each scene's utterances and their questions (drawn for the whole global batch, like TypedQuestions)."""
        drawn = []
        for scene in scenes:
            ids = [*rng.choice(self.by_family["nonrelational"], self.count // 2), *rng.choice(self.by_family["relational"], self.count - self.count // 2)]
            us = [self.pool.utterances[i] for i in ids]
            questions = [soc.Question(u.text, soc.answer(scene, u.subtype, u.colour, u.negate), u.family, u.subtype, u.colour, u.template) for u in us]
            masks = None
            if self.spec_augment > 0:  # drawn from the shared stream only when on: unmasked runs draw as before
                masks = [draw_masks(len(self.pool.frames(i)), self.model_cfg.n_mels, rng) if rng.random() < self.spec_augment else None for i in ids]
            mel = None
            if self.mel_on:  # likewise drawn only when on
                mel = [mel_augment.draw(self.lengths, self.mel_reverb, self.mel_babble, rng, self.mel_warp) for _ in ids]
            drawn.append(Drawn(questions, [int(i) for i in ids], masks, mel))
        return drawn

    def make(self, images: np.ndarray, drawn: list[Drawn]) -> SpokenBatch:
        masks = [d.masks or [] for d in drawn] if self.spec_augment > 0 else None
        mel = [d.mel or [] for d in drawn] if self.mel_on else None
        return SpokenBatch(images, [d.questions for d in drawn], [d.utterances for d in drawn], self.pool, self.model_cfg, masks, mel)

    def batch(self, images: np.ndarray, scenes: list[soc.Scene], rng: np.random.Generator) -> SpokenBatch:
        return self.make(images, self.draw(scenes, rng))
