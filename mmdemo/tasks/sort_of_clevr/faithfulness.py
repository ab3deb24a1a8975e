"""Does the model use where it looks? Edits with ground truth and ERASER scores on the test split (issue 31).

The generator knows every object, so it can change a scene and say what the right answer becomes. For each
test question (canonical wording) the deciding look is one hop at one step: hop 1 for non-relational questions,
hop 2 for relational ones, at the step that reads the colour word (reading.colour_token_step). An object's mass is
that look's weight on the regions that hold it (the one region rule: reading.object_mass / data.region_masks; a region
shared by two objects counts for both).

- looked-at edit: the object with the most mass (ties: the first in scene order) is removed (data.edit_scene
  "remove"). When that object is the one the question names, removing it leaves the question without an answer,
  so the named object is changed instead: reshaped (shape, count), moved to the mirror spot left-right (left),
  top-bottom (top) or through the centre (closest, furthest) (data.edit_scene "move": the nearest free spot).
- ignored edit (the control): among the objects that are neither named nor looked at, the one with the least mass
  (ties: scene order) whose removal leaves the true answer unchanged; questions without one are skipped.
- The new truth always comes from the generator (data.answer on the edited scene, re-rendered with data.render);
  edits that leave a closest / furthest question with a tie (< data.TIE_GAP) are skipped.
- follows: among looked-at edits that change the true answer, the share where the model's new answer is the new truth.
- ignores: among ignored edits, the share where the model's answer stays what it was.
- comprehensiveness@k / sufficiency@k (ERASER, DeYoung et al. 2020): the drop in the model's probability of its
  original answer when the look's k heaviest regions are blanked to white / when everything else is.

sum and concat fusions have no region weights: their look is a gradient attribution instead, |sum over channels of
d logit(original answer) / d pixel x pixel| summed over each grid cell (input in [0, 1], as the model receives it).
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

from mmdemo.checkpoint import DEFAULT, CheckpointError, load_checkpoint, record_measure
from mmdemo.model import FusionRNN
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import QuestionBatch
from mmdemo.tasks.sort_of_clevr.reading import colour_token_step, object_mass

KS = (1, 3)
TYPES = (*soc.NONREL, *soc.REL)
CHUNK = 500  # questions per forward pass
WHITE = 255
ATTRIBUTIONS = {True: "hop attention at the colour word (hop 1 non-relational, hop 2 relational)",
                False: "gradient x input summed per region (no region weights in this fusion)"}


class Case(NamedTuple):
    """One question's edits and scores (None where an edit does not apply)."""

    subtype: str
    changed: bool | None  # the looked-at edit changed the true answer (None: skipped)
    followed: bool | None  # ... and the model's new answer is the new truth
    removed: bool | None  # the looked-at edit was a removal (False: the named object was changed instead)
    kept: bool | None  # the ignored edit left the model's answer as it was (None: no ignored object)
    comp: dict[int, float]
    suff: dict[int, float]


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


def looked_edit(scene: soc.Scene, q: soc.Question, looked: soc.SceneObject) -> tuple[soc.Scene, bool]:
    """(edited scene, whether it is a removal): remove the looked-at object, or change the named one (module doc)."""
    if looked.colour != q.colour:
        return soc.edit_scene(scene, looked.colour, "remove"), True
    if q.subtype in ("shape", "count"):
        return soc.edit_scene(scene, q.colour, "reshape"), False
    x = soc.SIZE - 1 - looked.x if q.subtype in ("left", "closest", "furthest") else looked.x
    y = soc.SIZE - 1 - looked.y if q.subtype in ("top", "closest", "furthest") else looked.y
    return soc.edit_scene(scene, q.colour, "move", x=x, y=y), False


def masses(scene: soc.Scene, weights: np.ndarray, grid: int) -> np.ndarray:
    """(O,) the look's mass on each object of the scene (weights (R,): one hop at one step)."""
    return object_mass(np.asarray(weights)[None, None], scene.objects, grid)[0, 0]


def ignored_object(scene: soc.Scene, q: soc.Question, weights: np.ndarray, grid: int, negate: bool = False) -> soc.SceneObject | None:
    """The least-looked-at object (not the named one, not the most looked-at) whose removal keeps the truth; or None."""
    mass = masses(scene, weights, grid)
    looked = int(np.argmax(mass))
    old = truth(scene, q, negate)
    for i in np.argsort(mass, kind="stable"):
        o = scene.objects[int(i)]
        if o.colour == q.colour or int(i) == looked:
            continue
        if truth(soc.edit_scene(scene, o.colour, "remove"), q, negate) == old:
            return o
    return None


# ------------------------------------------------------------------------------------------ blanking


def cell_slices(region: int, grid: int) -> tuple[slice, slice]:
    """(rows, cols) pixel slices of a region (row-major), on the cell edges data.region_masks uses."""
    edges = np.rint(np.arange(grid + 1) * (soc.SIZE / grid)).astype(int)
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


# ------------------------------------------------------------------------------------------- metrics


def follows_rate(old_truths: Sequence[str], new_truths: Sequence[str], new_preds: Sequence[str]) -> tuple[float | None, int]:
    """(share, n): among edits that changed the truth, the share whose new prediction is the new truth."""
    hits = [p == t for o, t, p in zip(old_truths, new_truths, new_preds) if t != o]
    return (float(np.mean(hits)) if hits else None), len(hits)


def ignores_rate(old_preds: Sequence[str], new_preds: Sequence[str]) -> tuple[float | None, int]:
    """(share, n): the share of edits after which the prediction stayed the same."""
    hits = [a == b for a, b in zip(old_preds, new_preds)]
    return (float(np.mean(hits)) if hits else None), len(hits)


def comprehensiveness(p_full: Sequence[float], p_without: Sequence[float]) -> float | None:
    """Mean drop in the original answer's probability when the chosen regions are blanked (higher: they mattered)."""
    return float(np.mean(np.subtract(p_full, p_without))) if len(p_full) else None


def sufficiency(p_full: Sequence[float], p_only: Sequence[float]) -> float | None:
    """Mean drop when only the chosen regions are left (lower: they were enough)."""
    return float(np.mean(np.subtract(p_full, p_only))) if len(p_full) else None


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


def gradient_weights(model: FusionRNN, images: list[np.ndarray], questions: list[soc.Question], index: list[int],
                     labels: list[int], device: torch.device) -> np.ndarray:
    """(B, R) |sum over channels of d logit(label) / d pixel x pixel| summed per region, normalized to sum 1."""
    grid = model.cfg.grid
    out = []
    for start in range(0, len(questions), CHUNK // 5):
        rows = list(range(start, min(start + CHUNK // 5, len(questions))))
        batch = QuestionBatch(np.stack([images[index[i]] for i in rows]), [[questions[i]] for i in rows], model.cfg).to(device)
        x = batch.images.clone().requires_grad_(True)  # (B, 3, H, W), one copy per question
        with torch.enable_grad():
            logits = model(x, batch.token_ids, batch.token_mask, batch.image_index).logits
            logits[torch.arange(len(rows)), torch.tensor([labels[i] for i in rows])].sum().backward()
        pixel = (x.grad * x).sum(1).abs().detach().cpu().numpy()  # (B, H, W)
        cells = np.stack([pixel[:, rs, cs].sum((1, 2)) for rs, cs in (cell_slices(r, grid) for r in range(grid * grid))], 1)
        out.append(cells / np.clip(cells.sum(1, keepdims=True), 1e-12, None))
    return np.concatenate(out)


def measure(model: FusionRNN, samples: list[soc.Sample], device: torch.device) -> dict:
    """The faithfulness figures per question type and overall (see the module doc)."""
    cfg, grid = model.cfg, model.cfg.grid
    from mmdemo.text import load_tokenizer

    tok = load_tokenizer()
    images = [s.image for s in samples]
    qs = [q for s in samples for q in s.questions]
    owner = [j for j, s in enumerate(samples) for _ in s.questions]
    probs, hops, ids = run_pairs(model, images, qs, owner, device)
    pred = probs.argmax(1)
    if cfg.has_region_attention:
        weights = []
        for i, q in enumerate(qs):
            step = max(colour_token_step(tok.convert_ids_to_tokens(ids[i])), 0)
            weights.append(hops[i][step, 0 if q.family == "nonrelational" else min(1, hops[i].shape[1] - 1)])
        w = np.stack(weights).astype(np.float64)  # (B, R)
    else:
        w = gradient_weights(model, images, qs, owner, [int(p) for p in pred], device)

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
        edited, removed = looked_edit(scene, q, looked)
        new_truth = truth(edited, q, neg)
        if new_truth is not None:
            pairs.append((i, "looked", image_for((j, "edit", edited), lambda e=edited: soc.render(e))))
        ignored = ignored_object(scene, q, w[i], grid, neg)
        if ignored is not None:
            without = soc.edit_scene(scene, ignored.colour, "remove")
            pairs.append((i, "ignored", image_for((j, "edit", without), lambda e=without: soc.render(e))))
        for k in KS:
            top = tuple(sorted(top_regions(w[i], k)))
            for role, keep in (("comp", False), ("suff", True)):
                pairs.append((i, f"{role}{k}", image_for((j, role, top), lambda t=top, kp=keep, im=images[j]: blank_regions(im, t, grid, kp))))
        plans.append((truth(scene, q, neg), new_truth, removed))
    p2, _, _ = run_pairs(model, new_images, [qs[i] for i, _, _ in pairs], [n for _, _, n in pairs], device)
    got: dict[tuple[int, str], np.ndarray] = {(i, role): p2[b] for b, (i, role, _) in enumerate(pairs)}

    labels = cfg.labels
    cases = []
    for i, q in enumerate(qs):
        old_truth, new_truth, removed = plans[i]
        p = int(pred[i])
        looked_p = got.get((i, "looked"))
        changed = None if looked_p is None else new_truth != old_truth
        followed = None if not changed else labels[int(looked_p.argmax())] == new_truth
        ignored_p = got.get((i, "ignored"))
        kept = None if ignored_p is None else int(ignored_p.argmax()) == p
        comp = {k: float(probs[i, p] - got[(i, f"comp{k}")][p]) for k in KS}
        suff = {k: float(probs[i, p] - got[(i, f"suff{k}")][p]) for k in KS}
        cases.append(Case(q.subtype, changed, followed, None if looked_p is None else removed, kept, comp, suff))
    return summarize(cases, has_attention=cfg.has_region_attention, num_images=len(samples))


def summarize(cases: list[Case], has_attention: bool, num_images: int) -> dict:
    """Figures per question type and overall from the per-question cases."""

    def figures(group: list[Case]) -> dict:
        looked = [c for c in group if c.changed is not None]
        changed = [c for c in looked if c.changed]
        ignored = [c for c in group if c.kept is not None]

        def share(xs: list[bool]) -> float | None:
            return round(float(np.mean(xs)), 4) if xs else None

        out: dict = {
            "questions": len(group),
            "follows": share([bool(c.followed) for c in changed]), "follows_n": len(changed),
            "ignores": share([bool(c.kept) for c in ignored]), "ignores_n": len(ignored),
            "looked_edits": len(looked), "looked_removals": sum(bool(c.removed) for c in looked),
        }
        for k in KS:
            out[f"comprehensiveness@{k}"] = round(float(np.mean([c.comp[k] for c in group])), 4) if group else None
            out[f"sufficiency@{k}"] = round(float(np.mean([c.suff[k] for c in group])), 4) if group else None
        return out

    by_type: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_type[c.subtype].append(c)
    return {
        "attribution": ATTRIBUTIONS[has_attention],
        "num_images": num_images,
        "per_subtype": {t: figures(by_type[t]) for t in TYPES if by_type[t]},
        "overall": figures(cases),
    }


# ------------------------------------------------------------------------------------------- command


def table(result: dict) -> str:
    """A readable table of measure()'s result."""
    head = ["type", "n", "follows", "ignores"] + [f"comp@{k}" for k in KS] + [f"suff@{k}" for k in KS]
    lines = [f"looks from: {result['attribution']}; {result['num_images']} test images", " | ".join(head)]

    def pct(v: float | None, n: int) -> str:
        return "-" if v is None else f"{100 * v:.1f}% of {n}"

    rows = [*result["per_subtype"].items(), ("overall", result["overall"])]
    for name, f in rows:
        cells = [name, str(f["questions"]), pct(f["follows"], f["follows_n"]), pct(f["ignores"], f["ignores_n"])]
        cells += [f"{f[f'comprehensiveness@{k}']:+.3f}" for k in KS] + [f"{f[f'sufficiency@{k}']:+.3f}" for k in KS]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m mmdemo.tasks.sort_of_clevr.faithfulness", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=DEFAULT)
    p.add_argument("--images", type=int, default=soc.TEST_IMAGES, help=f"the first N test images (1..{soc.TEST_IMAGES})")
    p.add_argument("--write", action="store_true", help="record the result in the checkpoint's metrics.json ('faithfulness')")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    args = p.parse_args(argv)
    if not 1 <= args.images <= soc.TEST_IMAGES:
        p.error(f"--images must be 1..{soc.TEST_IMAGES}, got {args.images}")
    try:
        model, _ = load_checkpoint(args.checkpoint)
    except CheckpointError as e:
        p.error(str(e))
    if model.cfg.task != "sort-of-clevr" or model.cfg.question_input != "text":
        p.error(f"{args.checkpoint}: needs a typed Sort-of-CLEVR-NL model (task {model.cfg.task}, {model.cfg.question_input} questions)")
    started = time.perf_counter()
    result = measure(model, soc.generate("test", args.images, seed=0), torch.device("cpu"))  # test_split()'s first N
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(table(result))
    if args.write:
        record_measure(args.checkpoint, "faithfulness", result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
