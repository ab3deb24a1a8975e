"""The Photos tab: does a sentence describe a photo, how sure to be, where each word looked; search by sentence."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmdemo.checkpoint import read_metrics
from mmdemo.demo.models import answered, get_predictor
from mmdemo.demo.views import Frame, Slider, View, build_view, frame, slider
from mmdemo.errors import InputError
from mmdemo.inference import Prediction, Predictor
from mmdemo.plots import hop_maps
from mmdemo.registry import Registry
from mmdemo.results import pct

INTRO = ("Real photos: does the sentence describe the photo? The answer is a probability calibrated on real photos; below it, "
         "how sure to be and where each word of the sentence looked (the RNN + attention model, trained on public-domain clip art).")
START = "**Start here:** click an example photo on the left, or upload a photo and write a sentence, then **Match**."
NO_PHOTO_MODEL = "No photo (image-text matching) checkpoint found under checkpoints/."


@dataclass
class PhotoAnswer:
    """What Match shows: the headline, probabilities, per-word maps, the step views at the first step, how sure to be."""

    headline: str
    probs: dict[str, float]
    maps: dict  # plotly figure spec
    frame: Frame  # overlay and token strip (no trace)
    slider: Slider
    reference: str  # how sure to be: measured figures, the clip-art model alone, the zero-shot reference
    view: View


def headline(pred: Prediction) -> str:
    """The answer and P(match): calibrated on real photos for the shipped matcher; anything else is marked uncalibrated."""
    p = pred.probs.get("match")
    if p is None:
        return f"## {html.escape(pred.answer)}"
    if pred.calibrated:
        return f"## {html.escape(pred.answer)}\nP(match) = **{100 * p:.1f}%**, calibrated on real photos."
    return (f"### {html.escape(pred.answer)} <small>(uncalibrated)</small>\nP(match) = {100 * p:.0f}%: this model's own probability, "
            "not calibrated on photos (trained on clip art); the shipped `photos/match` is calibrated.")


def zero_shot_auc(folder: Path) -> str:
    """The zero-shot reference's measured photo ROC AUC (zero-shot.json beside the photo models), or 'n/a'."""
    try:
        return f"{json.loads((folder.parent / 'zero-shot.json').read_text())['photos_roc_auc']:.3f}"
    except (OSError, ValueError, KeyError, TypeError):
        return "n/a"


def example_files(cache: Path) -> tuple[list[list[str]], list[str]]:
    """The Photos tab's examples as [photo file, sentence] rows (written once into cache) and their labels."""
    from mmdemo.photos import EXAMPLES, gallery

    cache.mkdir(parents=True, exist_ok=True)
    photos = {p.name: p for p in gallery()}
    out, labels = [], []
    for name, sentence, matches in EXAMPLES:
        photo = photos[name]
        path = cache / f"photo-{name}.png"
        if not path.is_file():
            Image.fromarray(photo.pixels).save(path)
        out.append([str(path), sentence])
        labels.append(f"{photo.caption} + '{sentence}'" + ("" if matches else " (a mismatch example)"))
    return out, labels


class Photos:
    """The photo checkpoints of a registry, and the zero-shot reference beside each (built once)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._zero_shot: dict[str, Any] = {}

    def zero_shot(self, predictor: Predictor):
        """The zero-shot label bridge beside a photo model (one per checkpoint, built once)."""
        from mmdemo.tasks.matching.photo_eval import ZeroShotReference

        key = str(predictor.folder)
        if key not in self._zero_shot:
            self._zero_shot[key] = ZeroShotReference(predictor.cfg)
        return self._zero_shot[key]

    def default(self) -> str | None:
        """The shipped photo model's name, when this registry has it (what no photo checkpoint name means)."""
        folder = self.registry.default("match")
        return self.registry.name(folder) if (folder / "model.safetensors").is_file() else None

    def match(self, image: Any, sentence: str, checkpoint: str | None) -> PhotoAnswer:
        """Does the sentence describe the photo."""
        checkpoint = checkpoint or self.default()
        if not checkpoint:
            raise InputError(NO_PHOTO_MODEL)
        predictor, pixels, pred = answered(self.registry, checkpoint, image, sentence)
        view = build_view(pred, pixels, predictor.cfg, None, sentence)
        view.trace = None  # one hop per word: the maps and the overlay say it all
        maps = hop_maps(view.hops, pred.tokens, tuple(pred.grid), -1, f"Where each word looked ({pred.grid[0]} x {pred.grid[1]} maps)")
        return PhotoAnswer(headline(pred), pred.probs, maps, frame(view, view.step, 0), slider(view, "RNN step (word)"),
                           self.reference(predictor, pixels, sentence, pred), view)

    def reference(self, predictor: Predictor, pixels: np.ndarray, sentence: str, pred: Prediction) -> str:
        """How sure to be: the measured photo figures, what the clip-art model and the zero-shot reference say, and
        whether they agree."""
        lines = []
        if pred.calibrated:
            t = predictor.matcher.params["test"]
            lines.append(
                f"**How sure to be.** On {t['pairs']} photo pairs held out from every choice (GCompris photos) this matcher is right "
                f"{pct(t['accuracy'])} of the time, ROC AUC {t['roc_auc']:.3f}, calibration error {100 * t['ece']:.1f} points: "
                "of the pairs it gives about 70%, about 70% do match. It weighs the clip-art model below and the zero-shot scores of the photo's "
                "ImageNet classes (docs/RESULTS.md, \"A calibrated photo matcher\").")
        else:
            m = read_metrics(predictor.folder) or {}
            if m.get("photos_accuracy") is not None:
                lines.append(f"**How sure to be.** This model was trained on clip art. On {m.get('photos_val_pairs', 'n/a')} photo pairs it never "
                             f"saw (GCompris photos): accuracy {pct(m['photos_accuracy'])}, ROC AUC {m['photos_roc_auc']:.3f}.")
        own = pred.model_probs or pred.probs
        model_says = "match" if own.get("match", 0.0) >= 0.5 else "mismatch"
        lines.append(f"The clip-art model alone says **{model_says}** (P(match) {100 * own.get('match', 0.0):.0f}%).")
        cfg = predictor.cfg
        if cfg.image_encoder == "efficientnet_lite0" and cfg.text_encoder == "minilm":
            ref = self.zero_shot(predictor)
            cos = ref.cosine(predictor.model.image.cache.get([pixels]), sentence)
            own_cos, other_cos = ref.gallery()
            middle = (np.median(own_cos) + np.median(other_cos)) / 2
            ref_says = "match" if cos >= middle else "mismatch"
            lines.append(
                f"The zero-shot reference (nothing trained; photo ROC AUC {zero_shot_auc(predictor.folder)}) leans to **{ref_says}**: cosine "
                f"{cos:.2f}, against {np.median(own_cos):.2f} for a gallery photo's own caption and {np.median(other_cos):.2f} for another's (median).")
            if ref_says != model_says:
                lines.append(f"**They disagree** on this pair: the clip-art model says {model_says}, the zero-shot reference {ref_says}."
                             + (" The calibrated answer above weighs both." if pred.calibrated else ""))
        return "\n\n".join(lines)

    def search(self, sentence: str, checkpoint: str | None) -> list[tuple[np.ndarray, str]]:
        """Search by sentence: the example photos ranked by P(match) for the sentence, each with its caption."""
        from mmdemo.photos import gallery

        checkpoint = checkpoint or self.default()
        if not checkpoint:
            raise InputError(NO_PHOTO_MODEL)
        predictor = get_predictor(self.registry, checkpoint)
        scored = [(predictor.predict(photo.pixels, sentence).probs.get("match", 0.0), photo) for photo in gallery()]
        scored.sort(key=lambda t: -t[0])
        return [(photo.pixels, f"{rank}. {photo.caption}: P(match) {100 * p:.1f}%") for rank, (p, photo) in enumerate(scored, start=1)]
