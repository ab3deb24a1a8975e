"""Accuracy and attention grounding on the spec's 200-image test split."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from mmdemo.data import sort_of_clevr as soc
from mmdemo.model import FusionRNN

GROUPS = {
    "nonrelational": soc.NONREL,
    "relational": soc.REL,
    "closest_furthest": ("closest", "furthest"),
    "count": ("count",),
}


def region_box(region: int, grid: int, size: int = soc.SIZE) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in image pixels of a row-major grid region."""
    row, col = divmod(region, grid)
    cell = size / grid
    return col * cell, row * cell, (col + 1) * cell, (row + 1) * cell


def region_holds(region: int, grid: int, obj: soc.SceneObject) -> bool:
    """Grounding rule: the region's cell overlaps the object's 10 x 10 px footprint around its centre."""
    x0, y0, x1, y1 = region_box(region, grid)
    return x0 < obj.x + soc.HALF_SIDE and obj.x - soc.HALF_SIDE < x1 and y0 < obj.y + soc.HALF_SIDE and obj.y - soc.HALF_SIDE < y1


def most_attended_region(region_attention: np.ndarray, num_tokens: int) -> int:
    """The region of the single largest hop-1 weight over all real steps of one question."""
    att = region_attention[:num_tokens]  # (T, R)
    return int(np.unravel_index(np.argmax(att), att.shape)[1])


@torch.inference_mode()
def predict_samples(model: FusionRNN, samples: list[soc.Sample], device: torch.device, images_per_batch: int = 50):
    """Yields (question, scene, predicted label, region_attention (T, R), num_tokens) for every question."""
    from mmdemo.train import QuestionBatch

    model.eval()
    for start in range(0, len(samples), images_per_batch):
        chunk = samples[start : start + images_per_batch]
        batch = QuestionBatch(np.stack([s.image for s in chunk]), [s.questions for s in chunk], model.cfg).to(device)
        out = model(batch.images, batch.token_ids, batch.token_mask, batch.image_index)
        preds = out.logits.argmax(-1).cpu().tolist()
        att = out.region_attention.float().cpu().numpy()
        lengths = batch.token_mask.sum(1).cpu().tolist()
        for i, q in enumerate(batch.questions):
            scene = chunk[int(batch.image_index[i])].scene
            yield q, scene, model.cfg.labels[preds[i]], att[i], lengths[i]


def evaluate_model(
    model: FusionRNN, device: torch.device, samples: list[soc.Sample] | None = None, per_wording: bool = False
) -> dict:
    """Accuracy per question group and the grounding rate (None when the fusion has no attention);
    per_wording adds accuracy per question template ("per_wording": {template: accuracy})."""
    samples = samples if samples is not None else soc.test_split()
    right: dict[str, list[bool]] = defaultdict(list)
    by_template: dict[str, list[bool]] = defaultdict(list)
    grounded: list[bool] = []
    for q, scene, pred, att, n in predict_samples(model, samples, device):
        right[q.subtype].append(pred == q.answer)
        by_template[f"{q.subtype}: {q.template}"].append(pred == q.answer)
        if q.family == "nonrelational":
            grounded.append(region_holds(most_attended_region(att, n), model.cfg.grid, scene.find(q.colour)))
    metrics: dict = {}
    for group, subtypes in GROUPS.items():
        hits = [h for s in subtypes for h in right[s]]
        metrics[group] = round(float(np.mean(hits)), 4) if hits else None
    metrics["overall"] = round(float(np.mean([h for hs in right.values() for h in hs])), 4)
    metrics["grounding"] = round(float(np.mean(grounded)), 4) if model.cfg.fusion == "attention" and grounded else None
    metrics["per_subtype"] = {s: round(float(np.mean(h)), 4) for s, h in sorted(right.items())}
    metrics["num_questions"] = sum(len(h) for h in right.values())
    metrics["num_images"] = len(samples)
    if per_wording:
        metrics["per_wording"] = {t: round(float(np.mean(h)), 4) for t, h in sorted(by_template.items())}
    return metrics
