"""Attention supervision on generated scenes (training only).

Sort-of-CLEVR-NL knows where every object is, so training can tell the attention where to look, as in
supervised attention for VQA (Liu et al. 2017, "Attention Correctness in Neural Image Captioning";
Qiao et al. 2018, "Exploring Human-like Attention Supervision in VQA"). At the step that reads the
colour word:

- hop 1 should put its weight on the named object X (every question; with attn_hold, at every step from
  the colour word to the end of the question, so that no later step looks elsewhere with hop 1);
- hop 2 should put it on the object the answer is about: the closest / furthest other object, or for
  "count" every object with X's shape (X included); with attn_hold_answer, also held there at every
  later step to the end, as hop 1 is. Non-relational questions leave hop 2 free;
- with attn_wait, every hop should spread evenly over the regions at the steps before the colour word:
  nothing has been named yet, so a reader that knows only words 1..t has no object to prefer, and a
  confident look there would show the viewer a choice the model cannot have made.

The loss for one target is -log(weight mass on the target's regions), and for waiting the KL divergence
KL(uniform || weights), averaged over the steps before the colour word and the hops; a region "holds" an object by the
same rule as the grounding metric (data.region_masks: its cell overlaps the object's 10 x 10 footprint). Nothing here is used
at inference: predictions and the measured grounding come from the model alone.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from mmdemo.tasks.sort_of_clevr import data as soc

COLOUR_WORDS = (*soc.COLOURS, "grey")


@lru_cache(maxsize=1)
def colour_token_ids() -> frozenset[int]:
    """Tokenizer ids of the colour words (each is a single WordPiece)."""
    from mmdemo.text import load_tokenizer

    tok = load_tokenizer()
    return frozenset(int(tok.convert_tokens_to_ids(w)) for w in COLOUR_WORDS)


def colour_step(token_ids: list[int]) -> int:
    """The step that reads the colour word (its first occurrence), or -1."""
    colours = colour_token_ids()
    return next((t for t, i in enumerate(token_ids) if i in colours), -1)


class AttentionTargets(NamedTuple):
    step: torch.Tensor  # (B,) the step of the colour word in each question (-1: none found)
    hop1: torch.Tensor  # (B, R) bool, regions of the named object
    hop2: torch.Tensor  # (B, R) bool, regions of the object(s) the answer is about (all False: no target)


def hop2_objects(scene: soc.Scene, question: soc.Question) -> list[soc.SceneObject]:
    """The object(s) a relational question's answer is read from; [] for non-relational questions."""
    x = scene.find(question.colour)
    others = [o for o in scene.objects if o is not x]
    if question.subtype in ("closest", "furthest"):
        dist = [math.dist((x.x, x.y), (o.x, o.y)) for o in others]
        pick = min if question.subtype == "closest" else max
        return [others[dist.index(pick(dist))]]
    if question.subtype == "count":
        return [o for o in scene.objects if o.shape == x.shape]
    return []


def attention_targets(
    token_ids: torch.Tensor | None, questions: list[soc.Question], scenes: list[soc.Scene], grid: int, steps: list[int] | None = None
) -> AttentionTargets:
    """Targets for a batch: one question and its scene per row; the colour word's step from token_ids (B, T),
    or given as `steps` (spoken questions: the first step that has heard the whole colour word)."""
    if steps is None:
        steps = [colour_step(row) for row in token_ids.tolist()]
    hop1, hop2 = [], []
    for q, scene in zip(questions, scenes):
        hop1.append(soc.region_masks([scene.find(q.colour)], grid))
        hop2.append(soc.region_masks(hop2_objects(scene, q), grid))
    return AttentionTargets(torch.tensor(steps), torch.from_numpy(np.stack(hop1)), torch.from_numpy(np.stack(hop2)))


def attention_loss(
    hop_attention: torch.Tensor, targets: AttentionTargets, token_mask: torch.Tensor | None = None,
    wait: bool = False, eps: float = 1e-6, hold: tuple[bool, bool] = (True, False),
) -> torch.Tensor:
    """Mean -log(target mass) over the supervised (question, hop) pairs; hop_attention (B, T, K, R).

    With token_mask (B, T), each hop k with hold[k - 1] (by default hop 1 only) is held on its target at every
    real step from the colour word to the end of the question (its loss is the mean over those steps); a hop
    not held is supervised at the colour word. Hop 2 keeps its colour-word term when held too (a second pair),
    so that the held steps add to the look at the colour word rather than dilute it. With wait, each question whose
    colour word is not its first step adds KL(uniform || weights) averaged over its earlier steps and every
    hop (one more pair)."""
    total, count = attention_loss_terms(hop_attention, targets, token_mask, wait, eps, hold)
    return total / count.clamp(min=1.0)


def attention_loss_terms(
    hop_attention: torch.Tensor, targets: AttentionTargets, token_mask: torch.Tensor | None = None,
    wait: bool = False, eps: float = 1e-6, hold: tuple[bool, bool] = (True, False),
) -> tuple[torch.Tensor, torch.Tensor]:
    """attention_loss as (sum over the supervised pairs, their number): several processes divide their
    sums by the global number, so that the loss is the one of the whole batch."""
    b, t, k, _ = hop_attention.shape
    dev = hop_attention.device
    found = (targets.step >= 0).to(dev)
    rows = torch.arange(b, device=dev)
    step = targets.step.clamp(min=0).to(dev)
    at_step = hop_attention[rows, step]  # (B, K, R)
    losses, weights = [], []
    for hop, mask in ((0, targets.hop1), (1, targets.hop2)):
        if hop >= k:
            break
        mask = mask.to(dev)
        use = (found & mask.any(-1)).float()  # (B,)
        held_here = hold[hop] and token_mask is not None
        if held_here:
            held = token_mask.to(dev).bool() & (torch.arange(t, device=dev)[None] >= step[:, None])  # (B, T)
            mass = (hop_attention[:, :, hop] * mask[:, None]).sum(-1)  # (B, T)
            nll = -(mass + eps).log() * held
            losses.append(nll.sum(1) / held.sum(1).clamp(min=1) * use)
            weights.append(use)
        if not held_here or hop > 0:  # hop 2 keeps its own term at the colour word, held or not
            mass = (at_step[:, hop] * mask).sum(-1)  # (B,)
            losses.append(-(mass + eps).log() * use)
            weights.append(use)
    if wait:
        before = torch.arange(t, device=dev)[None] < step[:, None]  # (B, T): steps before the colour word
        use = (found & before.any(1)).float()  # (B,)
        r = hop_attention.shape[-1]
        kl = -(hop_attention + eps).log().mean(-1).mean(-1) - math.log(r)  # (B, T): KL(uniform || w), mean over hops
        losses.append((kl * before).sum(1) / before.sum(1).clamp(min=1) * use)
        weights.append(use)
    return torch.stack(losses).sum(), torch.stack(weights).sum()
