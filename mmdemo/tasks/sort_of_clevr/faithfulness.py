"""Does the model use where it looks? Edits with ground truth, ERASER scores, attributions and the pointing game (issue 31).

The generator knows every object, so it can change a scene and say what the right answer becomes. For each
test question (canonical wording) the deciding look is one hop at one step: hop 1 for non-relational questions,
hop 2 for relational ones, at the step that reads the colour word (reading.colour_token_step). An object's mass is
that look's weight on the regions that hold it (the one region rule: reading.object_mass / data.region_masks; a region
shared by two objects counts for both).

Two edit rules, each scored on its own (RULES):

- "six" (the headline): every edit keeps the scene inside the training distribution, six objects, one per colour.
  Looked-at edit: the object with the most mass (ties: the first in scene order) is reshaped (count questions) or
  moved to its mirror spot through the centre (the others; data.edit_scene "move": the nearest free spot).
  Ignored edit (the control): among the objects neither named nor looked at, the one with the least mass whose
  move to its mirror spot goes at least data.MIN_GAP px and leaves the true answer unchanged.
- "remove" (the first slice's rule): the looked-at object is removed; the control removes the least-looked-at object
  whose removal keeps the truth. A five-object scene is one the model never saw: on count questions the default
  behaves as if it counted the other shape and subtracted it from six (a shortcut every training scene allows), so
  removing an ignored object of the other shape raises its count (count_shift_remove); reported beside the headline.

Under both rules, when the looked-at object is the one the question names, the named object is changed instead
(removing it would leave the question without an answer): reshaped (shape, count), moved to the mirror spot
left-right (left), top-bottom (top) or through the centre (closest, furthest). The new truth always comes from
the generator (data.answer on the edited scene, re-rendered with data.render); edits that leave a closest /
furthest question with a tie (< data.TIE_GAP) are skipped.

- follows: among looked-at edits that change the true answer, the share where the model's new answer is the new truth.
- ignores: among ignored edits, the share where the model's answer stays what it was.
- comprehensiveness@k / sufficiency@k (ERASER, DeYoung et al. 2020): the drop in the model's probability of its
  original answer when the look's k heaviest regions are blanked to white / when everything else is.
- pointing game (Zhang et al. 2016), on the first `attribution_images` images: does the top region of the look
  fall on the named object (hop 1 at the colour word; IG and Grad-CAM of the answer) and, for relational
  questions, on an object the answer is read from (supervision.hop2_objects: hop 2 at the colour word; IG,
  Grad-CAM). IG's completeness gap is reported beside captum's own convergence delta (mmdemo.attribution).

sum and concat fusions have no region weights: their look is Grad-CAM of the original answer on the CNN's regions.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from mmdemo.attribution import Attribution, attribute, cell_edges
from mmdemo.checkpoint import DEFAULT, CheckpointError, load_checkpoint, record_measure
from mmdemo.model import FusionRNN
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import QuestionBatch
from mmdemo.tasks.sort_of_clevr.reading import colour_token_step, object_mass
from mmdemo.tasks.sort_of_clevr.supervision import hop2_objects

KS = (1, 3)
TYPES = (*soc.NONREL, *soc.REL)
RULES = ("six", "remove")  # the headline edit rule first (module doc)
CHUNK = 500  # questions per forward pass
ATTRIBUTION_CHUNK = 25  # questions per IG / Grad-CAM call
ATTRIBUTION_IMAGES = 50  # the pointing game's default: the first 50 test images (1,000 questions)
WHITE = 255
LOOKS = {True: "hop attention at the colour word (hop 1 non-relational, hop 2 relational)",
         False: "Grad-CAM of the answer on the CNN's regions (no region weights in this fusion)"}
METHODS = ("attention", "ig", "gradcam")


class EditCase(NamedTuple):
    """One question under one edit rule (None where an edit does not apply)."""

    changed: bool | None  # the looked-at edit changed the true answer (None: skipped)
    followed: bool | None  # ... and the model's new answer is the new truth
    kind: str | None  # what the looked-at edit did: remove / reshape / move
    kept: bool | None  # the ignored edit left the model's answer as it was (None: no ignored object)


class Case(NamedTuple):
    """One question's edits and scores."""

    subtype: str
    edits: dict[str, EditCase]  # by rule
    comp: dict[int, float]
    suff: dict[int, float]
    pointing: dict[str, bool]  # "<method>_named" / "<method>_answer" -> hit (only where measured)
    gap: tuple[float, float, float] | None  # IG: (our gap, captum's delta, logit change), where measured
    shift: int | None = None  # count questions: new - old answer after the "remove" control (None: not a count, or no control)


# ------------------------------------------------------------------------------------------- edits


def negated(scene: soc.Scene, q: soc.Question) -> bool:
    """Whether a left/top question asks the opposite side (its answer is the flipped one on its own scene)."""
    return q.subtype in ("left", "top") and soc.answer(scene, q.subtype, q.colour) != q.answer


def truth(scene: soc.Scene, q: soc.Question, negate: bool) -> str | None:
    """The generator's answer to q on scene; None when the named object is gone or closest/furthest has a tie."""
    try:
        named = scene.find(q.colour)
    except KeyError:
        return None
    if q.subtype in ("closest", "furthest"):
        d = sorted(math.dist((named.x, named.y), (o.x, o.y)) for o in scene.objects if o is not named)
        if len(d) > 1 and (d[1] - d[0] if q.subtype == "closest" else d[-1] - d[-2]) < soc.TIE_GAP:
            return None
    return soc.answer(scene, q.subtype, q.colour, negate)


def mirrored(scene: soc.Scene, o: soc.SceneObject, x: bool = True, y: bool = True) -> soc.Scene:
    """The scene with o moved to its mirror spot (left-right when x, top-bottom when y; the nearest free spot)."""
    return soc.edit_scene(scene, o.colour, "move", x=soc.SIZE - 1 - o.x if x else o.x, y=soc.SIZE - 1 - o.y if y else o.y)


def looked_edit(scene: soc.Scene, q: soc.Question, looked: soc.SceneObject, rule: str = "six") -> tuple[soc.Scene, str]:
    """(edited scene, what the edit did: remove / reshape / move) for the looked-at object (module doc)."""
    if looked.colour != q.colour:
        if rule == "remove":
            return soc.edit_scene(scene, looked.colour, "remove"), "remove"
        if q.subtype == "count":
            return soc.edit_scene(scene, looked.colour, "reshape"), "reshape"
        return mirrored(scene, looked), "move"
    if q.subtype in ("shape", "count"):
        return soc.edit_scene(scene, q.colour, "reshape"), "reshape"
    return mirrored(scene, looked, x=q.subtype != "top", y=q.subtype != "left"), "move"


def ignored_edit(scene: soc.Scene, q: soc.Question, obj: soc.SceneObject, rule: str = "six") -> soc.Scene:
    """The control's edit of an ignored object: a move to its mirror spot ("six") or its removal ("remove")."""
    return soc.edit_scene(scene, obj.colour, "remove") if rule == "remove" else mirrored(scene, obj)


def masses(scene: soc.Scene, weights: np.ndarray, grid: int) -> np.ndarray:
    """(O,) the look's mass on each object of the scene (weights (R,): one hop at one step)."""
    return object_mass(np.asarray(weights)[None, None], scene.objects, grid)[0, 0]


def moved_enough(scene: soc.Scene, edited: soc.Scene, colour: str) -> bool:
    """Whether a move put the object at least data.MIN_GAP px from where it was (the mirror of a centre object is itself)."""
    a, b = scene.find(colour), edited.find(colour)
    return math.dist((a.x, a.y), (b.x, b.y)) >= soc.MIN_GAP


def ignored_object(scene: soc.Scene, q: soc.Question, weights: np.ndarray, grid: int, negate: bool = False,
                   rule: str = "six") -> soc.SceneObject | None:
    """The least-looked-at object (not the named one, not the most looked-at) whose edit keeps the truth; or None.
    A move must go at least data.MIN_GAP px, or it is no edit at all."""
    mass = masses(scene, weights, grid)
    looked = int(np.argmax(mass))
    old = truth(scene, q, negate)
    for i in np.argsort(mass, kind="stable"):
        o = scene.objects[int(i)]
        if o.colour == q.colour or int(i) == looked:
            continue
        edited = ignored_edit(scene, q, o, rule)
        if (rule == "remove" or moved_enough(scene, edited, o.colour)) and truth(edited, q, negate) == old:
            return o
    return None


def pointing_hits(scene: soc.Scene, q: soc.Question, weights: np.ndarray, grid: int) -> tuple[bool, bool | None] | None:
    """(top region falls on the named object, ... on an object the answer is read from (None: non-relational)); None
    when the look has no positive weight anywhere (no top region: not scored)."""
    if float(np.max(weights)) <= 0.0:
        return None
    top = top_regions(weights, 1)[0]
    named = bool(soc.region_masks([scene.find(q.colour)], grid)[top])
    answer = hop2_objects(scene, q)
    return named, (bool(soc.region_masks(answer, grid)[top]) if answer else None)


# ------------------------------------------------------------------------------------------ blanking


def cell_slices(region: int, grid: int) -> tuple[slice, slice]:
    """(rows, cols) pixel slices of a region (row-major; attribution.cell_edges)."""
    edges = cell_edges(soc.SIZE, grid)
    r, c = divmod(region, grid)
    return slice(edges[r], edges[r + 1]), slice(edges[c], edges[c + 1])


def blank_regions(image: np.ndarray, regions: Sequence[int], grid: int, keep: bool = False) -> np.ndarray:
    """A copy of image (H, W, 3) with the regions whitened; keep=True whitens every other region instead."""
    out = np.array(image, copy=True)
    chosen = {int(r) for r in regions}
    for r in range(grid * grid):
        if (r in chosen) != keep:
            rows, cols = cell_slices(r, grid)
            out[rows, cols] = WHITE
    return out


def top_regions(weights: np.ndarray, k: int) -> list[int]:
    """The k heaviest regions (ties: the lower index)."""
    return [int(r) for r in np.argsort(-np.asarray(weights, dtype=np.float64), kind="stable")[:k]]


# ------------------------------------------------------------------------------------------- the model


def run_pairs(model: FusionRNN, images: list[np.ndarray], questions: list[soc.Question], index: list[int],
              device: torch.device) -> tuple[np.ndarray, list[np.ndarray], list[list[int]]]:
    """Answer questions[i] about images[index[i]]: (probabilities (B, C), hop weights (B, T, K, R), token ids)."""
    probs, hops, ids = [], [], []
    for start in range(0, len(questions), CHUNK):
        rows = range(start, min(start + CHUNK, len(questions)))
        used = sorted({index[i] for i in rows})
        where = {j: n for n, j in enumerate(used)}
        groups: list[list[soc.Question]] = [[] for _ in used]
        order: list[int] = []  # batch row -> question
        for i in rows:
            groups[where[index[i]]].append(questions[i])
        for j in used:
            order += [i for i in rows if index[i] == j]
        batch = QuestionBatch(np.stack([images[j] for j in used]), groups, model.cfg).to(device)
        with torch.inference_mode():
            out = model(batch.images, batch.token_ids, batch.token_mask, batch.image_index)
        back = np.argsort(order)
        probs.append(out.logits.float().softmax(-1).cpu().numpy()[back])
        hops += list(out.hop_attention.float().cpu().numpy()[back])  # (T, K, R) each, T padded per chunk
        tok = batch.token_ids.cpu().tolist()
        lengths = out.step_mask.sum(1).cpu().tolist()
        ids += [tok[b][: lengths[b]] for b in back]
    return np.concatenate(probs), hops, ids


def attributions(model: FusionRNN, images: list[np.ndarray], questions: list[soc.Question], index: list[int],
                 labels: list[int], device: torch.device, ig_steps: int | None = None) -> Attribution:
    """IG and Grad-CAM (mmdemo.attribution) of logit(labels[i]) for questions[i] about images[index[i]]; ig_steps=0: Grad-CAM only."""
    parts = []
    for start in range(0, len(questions), ATTRIBUTION_CHUNK):
        rows = list(range(start, min(start + ATTRIBUTION_CHUNK, len(questions))))
        batch = QuestionBatch(np.stack([images[index[i]] for i in rows]), [[questions[i]] for i in rows], model.cfg).to(device)
        kw = {} if ig_steps is None else {"ig_steps": ig_steps}
        a = attribute(model, batch.images, batch.token_ids, batch.token_mask, torch.tensor([labels[i] for i in rows], device=device), **kw)
        parts.append(a)
    if not parts:
        r = model.cfg.grid**2
        return Attribution(np.zeros((0, r)), np.zeros((0, r)), np.zeros((0, r)), np.zeros(0), np.zeros(0))
    return Attribution(*(np.concatenate([getattr(a, f) for a in parts]) for f in Attribution.__dataclass_fields__))


def deciding_step(hops: np.ndarray, tokens: list[str], q: soc.Question) -> tuple[int, int]:
    """(step, hop) of the look that decided: hop 1 (non-relational) or hop 2 (relational) at the colour word (its
    first step if none is read)."""
    return max(colour_token_step(tokens), 0), 0 if q.family == "nonrelational" else min(1, hops.shape[1] - 1)


def deciding_look(hops: np.ndarray, tokens: list[str], q: soc.Question) -> np.ndarray:
    """(R,) the weights of the look that decided (deciding_step)."""
    return hops[deciding_step(hops, tokens, q)]


def measure(model: FusionRNN, samples: list[soc.Sample], device: torch.device, attribution_images: int = ATTRIBUTION_IMAGES) -> dict:
    """The faithfulness figures per question type and overall (see the module doc)."""
    cfg, grid = model.cfg, model.cfg.grid
    from mmdemo.text import load_tokenizer

    tok = load_tokenizer()
    images = [s.image for s in samples]
    qs = [q for s in samples for q in s.questions]
    owner = [j for j, s in enumerate(samples) for _ in s.questions]
    probs, hops, ids = run_pairs(model, images, qs, owner, device)
    pred = probs.argmax(1)
    tokens = [tok.convert_ids_to_tokens(t) for t in ids]
    scored = [i for i in range(len(qs)) if owner[i] < attribution_images]  # the pointing game's questions
    attr = attributions(model, images, [qs[i] for i in scored], [owner[i] for i in scored], [int(pred[i]) for i in scored], device)
    where = {i: n for n, i in enumerate(scored)}
    if cfg.has_region_attention:
        w = np.stack([deciding_look(hops[i], tokens[i], q) for i, q in enumerate(qs)]).astype(np.float64)  # (B, R)
    else:
        rest = [i for i in range(len(qs)) if i not in where]
        cam = attributions(model, images, [qs[i] for i in rest], [owner[i] for i in rest], [int(pred[i]) for i in rest], device, ig_steps=0)
        w = np.zeros((len(qs), grid * grid))
        w[scored] = attr.gradcam
        w[rest] = cam.gradcam

    # every edited / blanked image once, with the questions asked about it
    new_images: list[np.ndarray] = []
    keys: dict[tuple, int] = {}

    def image_for(key: tuple, make) -> int:
        if key not in keys:
            keys[key] = len(new_images)
            new_images.append(make())
        return keys[key]

    pairs: list[tuple[int, str, int]] = []  # (question, role, image)
    plans = []
    for i, q in enumerate(qs):
        j, scene = owner[i], samples[owner[i]].scene
        neg = negated(scene, q)
        looked = scene.objects[int(np.argmax(masses(scene, w[i], grid)))]
        plan = {}
        for rule in RULES:
            edited, kind = looked_edit(scene, q, looked, rule)
            new_truth = truth(edited, q, neg)
            if new_truth is not None:
                pairs.append((i, f"looked-{rule}", image_for((j, "edit", edited), lambda e=edited: soc.render(e))))
            ignored = ignored_object(scene, q, w[i], grid, neg, rule)
            if ignored is not None:
                other = ignored_edit(scene, q, ignored, rule)
                pairs.append((i, f"ignored-{rule}", image_for((j, "edit", other), lambda e=other: soc.render(e))))
            plan[rule] = (new_truth, kind)
        for k in KS:
            top = tuple(sorted(top_regions(w[i], k)))
            for role, keep in (("comp", False), ("suff", True)):
                pairs.append((i, f"{role}{k}", image_for((j, role, top), lambda t=top, kp=keep, im=images[j]: blank_regions(im, t, grid, kp))))
        plans.append((truth(scene, q, neg), plan))
    p2, _, _ = run_pairs(model, new_images, [qs[i] for i, _, _ in pairs], [n for _, _, n in pairs], device)
    got: dict[tuple[int, str], np.ndarray] = {(i, role): p2[b] for b, (i, role, _) in enumerate(pairs)}

    labels = cfg.labels
    cases = []
    for i, q in enumerate(qs):
        old_truth, plan = plans[i]
        p = int(pred[i])
        edits = {}
        for rule in RULES:
            new_truth, kind = plan[rule]
            looked_p, ignored_p = got.get((i, f"looked-{rule}")), got.get((i, f"ignored-{rule}"))
            changed = None if looked_p is None else new_truth != old_truth
            edits[rule] = EditCase(changed, None if not changed else labels[int(looked_p.argmax())] == new_truth,
                                   None if looked_p is None else kind, None if ignored_p is None else int(ignored_p.argmax()) == p)
        pointing: dict[str, bool] = {}
        gap = None
        scene = samples[owner[i]].scene
        if i in where:
            n = where[i]
            looks = {"ig": attr.ig[n], "gradcam": attr.gradcam[n]}
            if cfg.has_region_attention:
                looks["attention"] = w[i]
                hop1 = pointing_hits(scene, q, hops[i][max(colour_token_step(tokens[i]), 0), 0], grid)
                if hop1 is not None:
                    pointing["attention_named"] = hop1[0]
            for method, look in looks.items():
                hits = pointing_hits(scene, q, look, grid)
                if hits is None:
                    pointing[f"{method}_empty"] = True
                    continue
                if method != "attention":
                    pointing[f"{method}_named"] = hits[0]
                if hits[1] is not None:
                    pointing[f"{method}_answer"] = hits[1]
            gap = (float(attr.ig_gap[n]), float(attr.ig_delta[n]), float(attr.ig_raw[n].sum() - attr.ig_gap[n]))
        comp = {k: float(probs[i, p] - got[(i, f"comp{k}")][p]) for k in KS}
        suff = {k: float(probs[i, p] - got[(i, f"suff{k}")][p]) for k in KS}
        shift = None
        ignored_p = got.get((i, "ignored-remove"))
        if q.subtype == "count" and ignored_p is not None:
            shift = int(labels[int(ignored_p.argmax())]) - int(labels[p]) if labels[p].isdigit() and labels[int(ignored_p.argmax())].isdigit() else None
        cases.append(Case(q.subtype, edits, comp, suff, pointing, gap, shift))
    return summarize(cases, has_attention=cfg.has_region_attention, num_images=len(samples), attribution_images=min(attribution_images, len(samples)))


def summarize(cases: list[Case], has_attention: bool, num_images: int, attribution_images: int) -> dict:
    """Figures per question type and overall from the per-question cases."""

    def share(xs: list[bool]) -> float | None:
        return round(float(np.mean(xs)), 4) if xs else None

    def figures(group: list[Case]) -> dict:
        out: dict = {"questions": len(group)}
        for rule in RULES:
            suffix = "" if rule == RULES[0] else f"_{rule}"
            looked = [c.edits[rule] for c in group if c.edits[rule].changed is not None]
            changed = [e for e in looked if e.changed]
            ignored = [c.edits[rule] for c in group if c.edits[rule].kept is not None]
            out |= {f"follows{suffix}": share([bool(e.followed) for e in changed]), f"follows{suffix}_n": len(changed),
                    f"ignores{suffix}": share([bool(e.kept) for e in ignored]), f"ignores{suffix}_n": len(ignored),
                    f"looked_edits{suffix}": len(looked)}
        for k in KS:
            out[f"comprehensiveness@{k}"] = round(float(np.mean([c.comp[k] for c in group])), 4) if group else None
            out[f"sufficiency@{k}"] = round(float(np.mean([c.suff[k] for c in group])), 4) if group else None
        for method in METHODS:
            empty = sum(f"{method}_empty" in c.pointing for c in group)
            if empty:
                out[f"pointing_{method}_empty"] = empty  # looks with no positive weight: not scored
            for target in ("named", "answer"):
                hits = [c.pointing[f"{method}_{target}"] for c in group if f"{method}_{target}" in c.pointing]
                if hits:
                    out[f"pointing_{method}_{target}"], out[f"pointing_{method}_{target}_n"] = share(hits), len(hits)
        shifts = [c.shift for c in group if c.shift is not None]
        if shifts:  # count: how the answer moves when an ignored object is removed (the truth does not)
            out["count_shift_remove"] = {f"{k:+d}": shifts.count(k) for k in sorted(set(shifts))}
        gaps = [c.gap for c in group if c.gap is not None]
        if gaps:
            ours, theirs, change = (np.array(v) for v in zip(*gaps))
            out["ig_gap_median"] = round(float(np.median(np.abs(ours))), 4)
            out["ig_gap_relative_median"] = round(float(np.median(np.abs(ours) / np.maximum(np.abs(change), 1e-6))), 4)
            out["ig_gap_vs_captum_max"] = float(np.max(np.abs(ours - theirs)))
        return out

    by_type: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_type[c.subtype].append(c)
    return {
        "attribution": LOOKS[has_attention],
        "num_images": num_images,
        "attribution_images": attribution_images,
        "rules": list(RULES),
        "per_subtype": {t: figures(by_type[t]) for t in TYPES if by_type[t]},
        "overall": figures(cases),
    }


# ------------------------------------------------------------------------------------------- command


def table(result: dict) -> str:
    """Two readable tables of measure()'s result: the edits and ERASER scores, then the pointing game."""
    head = ["type", "n", "follows", "ignores", "follows (remove)", "ignores (remove)"]
    head += [f"comp@{k}" for k in KS] + [f"suff@{k}" for k in KS]
    lines = [f"looks from: {result['attribution']}; {result['num_images']} {result.get('split', 'test')} images", " | ".join(head)]

    def pct(f: dict, key: str) -> str:
        v, n = f.get(key), f.get(f"{key}_n", 0)
        return "-" if v is None else f"{100 * v:.1f}% of {n}"

    rows = [*result["per_subtype"].items(), ("overall", result["overall"])]
    for name, f in rows:
        cells = [name, str(f["questions"])] + [pct(f, k) for k in ("follows", "ignores", "follows_remove", "ignores_remove")]
        cells += [f"{f[f'comprehensiveness@{k}']:+.3f}" for k in KS] + [f"{f[f'sufficiency@{k}']:+.3f}" for k in KS]
        lines.append(" | ".join(cells))
    keys = [f"pointing_{m}_{t}" for m in METHODS for t in ("named", "answer")]
    keys = [k for k in keys if any(k in f for _, f in rows)]
    lines += [] if not keys else ["", f"pointing game (top region on the object; first {result['attribution_images']} images) | "
              + " | ".join(k.removeprefix("pointing_") for k in keys) + " | IG gap (median |gap|, relative)"]
    for name, f in rows if keys else []:
        gap = f"{f['ig_gap_median']:.3f}, {100 * f['ig_gap_relative_median']:.0f}%" if "ig_gap_median" in f else "-"
        lines.append(" | ".join([name] + [pct(f, k) for k in keys] + [gap]))
    shifts = result["per_subtype"].get("count", {}).get("count_shift_remove")
    if shifts:
        lines += ["", "count, removing an ignored object (the true count stays): the answer moved by "
                  + ", ".join(f"{k}: {n}" for k, n in shifts.items())]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m mmdemo.tasks.sort_of_clevr.faithfulness", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=DEFAULT)
    p.add_argument("--images", type=int, default=soc.TEST_IMAGES, help=f"the first N images of the split (1..{soc.TEST_IMAGES})")
    p.add_argument("--split", choices=("test", "val"), default="test", help="val: where the edit rules were checked (not written)")
    p.add_argument("--attribution-images", type=int, default=ATTRIBUTION_IMAGES,
                   help="the pointing game and IG on the first N of those images (IG costs about 25 forward and backward passes a question)")
    p.add_argument("--write", action="store_true", help="record the result in the checkpoint's metrics.json ('faithfulness')")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    args = p.parse_args(argv)
    if not 1 <= args.images <= soc.TEST_IMAGES:
        p.error(f"--images must be 1..{soc.TEST_IMAGES}, got {args.images}")
    if not 0 <= args.attribution_images <= args.images:
        p.error(f"--attribution-images must be 0..{args.images} (--images), got {args.attribution_images}")
    if args.write and (args.split != "test" or args.images != soc.TEST_IMAGES or args.attribution_images != ATTRIBUTION_IMAGES):
        p.error("--write records the standard measurement: leave --split, --images and --attribution-images out")
    try:
        model, _ = load_checkpoint(args.checkpoint)
    except CheckpointError as e:
        p.error(str(e))
    if model.cfg.task != "sort-of-clevr" or model.cfg.question_input != "text" or model.cfg.image_encoder != "cnn":
        p.error(f"{args.checkpoint}: needs a typed Sort-of-CLEVR-NL model on the CNN image encoder (task {model.cfg.task}, "
                f"{model.cfg.question_input} questions, {model.cfg.image_encoder})")
    started = time.perf_counter()
    result = measure(model, soc.generate(args.split, args.images, seed=0), torch.device("cpu"), args.attribution_images)  # test_split()'s first N
    result["split"] = args.split
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(table(result))
    if args.write:
        record_measure(args.checkpoint, "faithfulness", result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
