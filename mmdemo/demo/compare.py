"""The Compare tab: one input through the default, the other fusions and the ablation models."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmdemo.checkpoint import ROOT, read_metrics
from mmdemo.demo.models import answered
from mmdemo.demo.scenes import Scenes
from mmdemo.errors import InputError
from mmdemo.plots import is_uniform, overlay
from mmdemo.registry import Registry
from mmdemo.results import FULL_BUDGET, compared_models, faithfulness_table, pct
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.faithfulness import ATTRIBUTION_IMAGES
from mmdemo.tasks.sort_of_clevr.reading import colour_token_step

INTRO = ("The Ask tab's image and question, answered by every model: the default, the other two fusions (sum, concat) trained "
         "the same way, and smaller models trained briefly (each row says how it was trained). Ask on the Ask tab first.")
NO_SCENE = "No scene yet: pick an example or click **New random scene** on the **Ask** tab, then come back and compare."
HEADERS = ["model", "training", "answer", "true answer", "right?", "confidence", "non\u2011relational (test)", "relational (test)",
           "overall (test)"]


FAITH_TITLE = "### Does each model use where it looks? (the test split)"
FAITH_INTRO = ("The generator edits each test scene and recomputes the true answer. **follows**: after an edit to the object the model "
               "looked at most (at the step that decided) changes the true answer, how often its answer becomes the new truth. "
               "**ignores**: after an edit to an object it looked at least leaves the truth as it was, how often its answer stays. "
               "The first two move or reshape objects, so six objects stay as in training; the **(remove)** columns remove the "
               "object instead. **on named / answer object**: how often the region each method weighs most lies on the object "
               f"the question names, or one its answer is read from (on the first {ATTRIBUTION_IMAGES} test images; hop 1 at the colour word was "
               "trained to land on the named object, so attention's figure there is a training target met, not independent "
               "evidence). sum and concat have no attention: "
               "their edits follow Grad-CAM. Measured by `python -m mmdemo.tasks.sort_of_clevr.faithfulness`.")


def faithfulness_markdown(root: Path) -> str:
    """The Compare tab's second table with its title and how to read it (every figure from the models' metrics.json)."""
    return "\n\n".join([FAITH_TITLE, FAITH_INTRO, faithfulness_table(root)])


@dataclass
class Comparison:
    """The image compared, one table row per model (HEADERS), one map per model, and what the comparison says."""

    image: np.ndarray | None
    rows: list[list[Any]] = field(default_factory=list)
    gallery: list[tuple[np.ndarray, str]] = field(default_factory=list)
    summary: str = NO_SCENE


def summary(rows: list[list[Any]], truth: str | None) -> str:
    """One plain paragraph: which fusion gets this input right, which wins over the test split, and why."""
    fusion_of = {"default": "attention"}  # every other row is named "<fusion>-..."
    fusions = {f: [r for r in rows if fusion_of.get(r[0], r[0].split("-")[0]) == f] for f in ("attention", "sum", "concat")}
    parts = []
    if truth is not None:
        right = {f: sum(r[4].startswith("✓") for r in rs) for f, rs in fusions.items() if rs}
        parts.append(f"**On this input** (true answer: {html.escape(truth)}): " + ", ".join(
            f"{f} right in {right[f]} of {len(fusions[f])} models" for f in right) + ".")
    full = {f: next((r for r in rs if r[1] == FULL_BUDGET), None) for f, rs in fusions.items()}
    if all(full.values()):
        a, su, c = full["attention"], full["sum"], full["concat"]
        parts.append(f"**Over the 4,000 test questions**, at the same full training budget, attention gets {a[6]} of the non-relational "
                     f"and {a[7]} of the relational questions right, against {su[6]} / {su[7]} for sum and {c[6]} / {c[7]} for concat.")
    parts.append("**Why:** sum and concat give the RNN one average of the whole picture at every step, so when the question names "
                 "\"the red object\" nothing tells them where it is; they guess the likeliest shape (about half right). Attention "
                 "weighs the 25 regions at every step, so it can look at the red object once it reads \"red\", then at its neighbour.")
    return "\n\n".join(parts)


class Compare:
    """The registry's compared checkpoints (mmdemo.results.compared_models), the default first."""

    def __init__(self, registry: Registry, scenes: Scenes) -> None:
        self.registry = registry
        self.scenes = scenes

    def compare(self, image: Any, question: str, state: dict | None = None) -> Comparison:
        """The same input through every compared model, with the true answer and a right/wrong mark when the scene is known."""
        if image is None:
            return Comparison(None)
        root = self.registry.root  # the registry's copy of checkpoints/ (tests give it another root)
        rows, gallery, pixels, truth = [], [], None, None
        for name, budget, shipped in compared_models():
            folder = root / shipped.relative_to(ROOT)
            if not (folder / "model.safetensors").is_file():
                continue
            predictor, pixels, pred = answered(self.registry, self.registry.name(folder), image, question)
            if not rows:
                scene = self.scenes.scene_of(pixels, predictor.cfg.image_size, state)
                truth = soc.true_answer(scene, question) if scene is not None and pred.in_domain else None
            m = read_metrics(folder) or {}
            mark = "" if truth is None else ("✓ right" if pred.answer == truth else "✗ wrong")
            rows.append([name, budget, pred.answer, truth or "unknown", mark, pct(pred.probs[pred.answer]), pct(m.get("nonrelational")),
                         pct(m.get("relational")), pct(m.get("overall"))])
            hops = np.asarray(pred.hop_attention)  # (T, K, R)
            s = colour_token_step(pred.tokens)
            s = s if s >= 0 else int(np.argmax(hops[:, 0].max(1)))
            looked = "no attention" if is_uniform(hops[s, 0]) else f"hop 1 at '{pred.tokens[s]}'"
            gallery.append((overlay(pixels, hops[s, 0], tuple(pred.grid)), f"{name}: {pred.answer} {mark[:1]} · {looked}".replace("  ", " ")))
        if not rows:
            raise InputError("No checkpoints found under checkpoints/sort-of-clevr/.")
        return Comparison(pixels, rows, gallery, summary(rows, truth))
