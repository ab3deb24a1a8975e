"""The Ask tab's "Does it use what it looks at?" panel (issue 31): at the step that decided, the attention beside two
gradient attributions and the object the truth is about; two buttons edit the scene (the faithfulness command's
"remove" rule), ask again and set the new answer beside the new truth the generator recomputes."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmdemo.attribution import IG_STEPS, Attribution
from mmdemo.checkpoint import read_metrics
from mmdemo.demo.ask import Answer, Ask
from mmdemo.demo.models import answered, get_predictor
from mmdemo.demo.scenes import Edit, Scenes
from mmdemo.plots import HOP_NAMES, overlay
from mmdemo.results import pct
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import faithfulness as ff
from mmdemo.tasks.sort_of_clevr.supervision import hop2_objects

TITLE = "Does it use what it looks at?"
INTRO = ("Attention shows where the model looked; it does not prove the answer came from there. This panel sets the look "
         "that decided beside two gradient attributions (how much each region pushed the answer) and the object the "
         "truth depends on. The buttons then edit the scene and ask again: remove what it looked at, and the answer "
         "should follow the new truth; remove something it ignored, and the answer should stay.")
NO_SCENE = ("Needs a generated scene: an edit is only checked against the truth the generator can recompute, and an "
            "uploaded image has none. Pick an example or click **New random scene**.")
NO_ANSWER = "Ask a question first: the panel explains the answer on screen."
TYPED_ONLY = "This panel explains typed questions on the scene models."
NOT_A_KIND = "Needs one of the six kinds of question in its usual words (listed under the question box): then the truth is known."
LOOKED, IGNORED = "looked", "ignored"
TILES = ("attention", "Integrated Gradients", "Grad-CAM", "the truth's objects")  # Panel.tiles, in this order


@dataclass
class Panel:
    """What the panel shows: its text and the four pictures (TILES; none when there is no panel)."""

    markdown: str
    tiles: list[np.ndarray]


@dataclass
class Intervention:
    """A button's outcome: the verdict always; the edited scene, its answer and panel when the edit was done."""

    verdict: str
    edit: Edit
    answer: Answer | None = None
    panel: Panel | None = None


@dataclass
class _Case:
    """One question about one generated scene, as the panel and the buttons read it."""

    scene: soc.Scene
    question: soc.Question
    negate: bool
    pixels: np.ndarray
    answer: str
    look: np.ndarray  # (R,) the deciding look (attention, or Grad-CAM without region weights)
    look_name: str
    attribution: Attribution | None  # None: not asked for (an edit chooses by attention alone)


def _names(o: soc.SceneObject) -> str:
    return f"{o.colour} {o.shape}"


class Faith:
    """The panel and its two edits, over the Ask room's registry and scenes."""

    def __init__(self, ask: Ask, scenes: Scenes) -> None:
        self.ask, self.scenes = ask, scenes

    def _case(self, image: Any, question: str, checkpoint: str | None, state: dict | None, attributions: bool = True) -> _Case | str:
        """The case, or why there is none (a sentence for the panel). attributions=False skips IG and Grad-CAM where the
        model has attention (the edits choose by it alone)."""
        if image is None:
            return NO_ANSWER
        predictor = get_predictor(self.ask.registry, checkpoint)
        cfg = predictor.cfg
        if cfg.question_input != "text" or cfg.image_encoder != "cnn":
            return TYPED_ONLY
        _, pixels, pred = answered(self.ask.registry, checkpoint, image, question, predictor)
        scene = self.scenes.scene_of(pixels, cfg.image_size, state)
        if scene is None:
            return NO_SCENE
        parsed = soc.parse_question(question)
        if parsed is None or not pred.in_domain:
            return NOT_A_KIND
        subtype, colour, negate = parsed
        if colour not in {o.colour for o in scene.objects}:
            return f"There is no {colour} object in this scene (it was removed), so the question has no true answer."
        q = soc.Question(question, "", "nonrelational" if subtype in soc.NONREL else "relational", subtype, colour)
        truth = ff.truth(scene, q, negate)  # the tie rule the edits use
        if truth is None:
            return f"Two objects tie for {subtype} here, so there is no single true answer to check against."
        q = soc.Question(question, truth, q.family, subtype, colour)
        steps = IG_STEPS if attributions else 0  # the edits choose by attention alone, or by Grad-CAM without it
        attribution = predictor.attribute(pixels, question, pred.answer, ig_steps=steps) if attributions or not cfg.has_region_attention else None
        if cfg.has_region_attention:
            hops = np.asarray(pred.hop_attention)
            s, k = ff.deciding_step(hops, pred.tokens, q)
            look, name = hops[s, k], f"{HOP_NAMES[k]} at '{pred.tokens[s]}' (step {s})"
        else:
            look, name = attribution.gradcam[0], f"Grad-CAM (this {cfg.fusion} model has no attention)"
        return _Case(scene, q, negate, pixels, pred.answer, np.asarray(look, dtype=np.float64), name, attribution)

    def panel(self, image: Any, question: str, checkpoint: str | None, state: dict | None) -> Panel:
        """The deciding look, IG, Grad-CAM and the truth's objects, and what each points at."""
        case = self._case(image, question, checkpoint, state)
        if isinstance(case, str):
            return Panel(case, [])
        grid = int(np.sqrt(len(case.look)))
        scene, q = case.scene, case.question
        named = scene.find(q.colour)
        targets = [named, *hop2_objects(scene, q)]
        truth_map = soc.region_masks(targets, grid).astype(np.float64)
        looked = scene.objects[int(np.argmax(ff.masses(scene, case.look, grid)))] if case.look.max() > 0 else None
        ig, cam = case.attribution.ig[0], case.attribution.gradcam[0]

        def on(weights: np.ndarray) -> str:
            hits = ff.pointing_hits(scene, q, weights, grid)  # relational: the answer object first, hop 2's target
            if hits is None:
                return "nothing (no region has positive weight)"
            return "an answer object ✓" if hits[1] else ("the named object ✓" if hits[0] else "neither ✗")

        tiles = [overlay(case.pixels, w, (grid, grid)) for w in (case.look, ig, cam, truth_map)]  # TILES' order
        gap, delta = float(case.attribution.ig_gap[0]), float(case.attribution.ig_delta[0])
        most = f"most of it on the **{_names(looked)}**" if looked is not None else "no positive weight anywhere"
        lines = [f"**The look that decided:** {html.escape(case.look_name, quote=False)}; {most}.",
                 (f"**Where each weighs most:** attention on {on(case.look)} · Integrated Gradients on {on(ig)} · Grad-CAM on {on(cam)}. "
                 f"The truth depends on the {' and the '.join(_names(o) for o in dict.fromkeys(targets))}."),
                 (f"Integrated Gradients' regions add up to the answer's score change from a blank canvas, give or take {gap:+.2f} "
                  f"(its completeness gap; captum reports {delta:+.2f})."),
                 self.measured(checkpoint)]
        return Panel("\n\n".join(lines), tiles)

    def measured(self, checkpoint: str | None) -> str:
        """This model's figures over the test split, from its metrics.json (faithfulness command)."""
        predictor = get_predictor(self.ask.registry, checkpoint)
        f = (read_metrics(predictor.folder) or {}).get("faithfulness")
        if not f:
            return "Not measured for this model yet (`python -m mmdemo.tasks.sort_of_clevr.faithfulness --write`)."
        o = f["overall"]
        return (f"**This model over {o['questions']:,} test questions:** after removing what it looked at the answer follows the new "
                f"truth {pct(o.get('follows_remove'))}; after removing something it ignored it stays {pct(o.get('ignores_remove'))} "
                f"(moving instead, so six objects stay: {pct(o.get('follows'))} / {pct(o.get('ignores'))}). Attention's top region "
                f"is on the named object at the colour word {pct(o.get('pointing_attention_named'))}; IG's "
                f"{pct(o.get('pointing_ig_named'))}, Grad-CAM's {pct(o.get('pointing_gradcam_named'))}.")

    def intervene(self, which: str, image: Any, question: str, checkpoint: str | None, state: dict | None) -> Intervention:
        """Remove the object the deciding look weighed most (which="looked"), or the least-weighed one whose removal
        leaves the truth as it is ("ignored"); ask again; the verdict sets the new answer beside the new truth."""
        case = self._case(image, question, checkpoint, state, attributions=False)
        if isinstance(case, str):
            return Intervention(case, Edit(case))
        scene, q, grid = case.scene, case.question, int(np.sqrt(len(case.look)))
        if case.look.max() <= 0:
            return Intervention(f"Not done: {case.look_name} puts no weight anywhere here, so nothing was looked at or ignored.", Edit("Not done."))
        old_truth = q.answer
        obj = scene.objects[int(np.argmax(ff.masses(scene, case.look, grid)))] if which == LOOKED else None
        if len(scene.objects) <= 2 and (obj is None or obj.colour != q.colour):  # a removal (the named object is changed instead)
            return Intervention("Not done: two objects are left, and a scene needs at least two.", Edit("Not done."))
        if which == LOOKED:
            edited, kind = ff.looked_edit(scene, q, obj, "remove")
            done = {"remove": f"Removed the {_names(obj)}, the object it looked at most",
                    "reshape": f"The {_names(obj)} it looked at most is the one the question names, so it was reshaped instead",
                    "move": f"The {_names(obj)} it looked at most is the one the question names, so it was moved to its mirror spot instead"}[kind]
        else:
            obj = ff.ignored_object(scene, q, case.look, grid, case.negate, "remove")
            if obj is None:
                return Intervention("Nothing to remove: every object it ignored changes the truth when removed.", Edit("Not done."))
            edited, done = ff.ignored_edit(scene, q, obj, "remove"), f"Removed the {_names(obj)}, an object it looked at least"
        new_truth = ff.truth(edited, q, case.negate)
        if new_truth is None:
            return Intervention(f"Not done: after that edit two objects tie for {q.subtype}, so there is no single true answer.", Edit("Not done."))
        shown = self.scenes.shown(edited, self.scenes.known(case.pixels, state))  # an example's own state when none is kept
        answer = self.ask.ask(shown.image, question, checkpoint, shown.state)
        return Intervention(_verdict(done, case.answer, old_truth, answer_text(answer), new_truth), Edit(done + ".", shown), answer,
                            self.panel(shown.image, question, checkpoint, shown.state))


def answer_text(answer: Answer) -> str:
    """The answer an Answer shows (its most probable label)."""
    return max(answer.probs, key=answer.probs.get)


def _verdict(done: str, before: str, old_truth: str | None, after: str, new_truth: str) -> str:
    """Before and after, each beside its truth, and whether the model did what the edit asks of it."""
    if new_truth != old_truth:
        ok = after == new_truth
        says = "it followed the edit ✓" if ok else "it did not follow the edit ✗"
    else:
        ok = after == before
        says = "the answer stayed, as the truth did ✓" if ok else "the answer changed though the truth did not ✗"
    return (f"{done}.\n\n| | answer | true answer |\n|---|---|---|\n| before | {before} | {old_truth} |\n| after | **{after}** | **{new_truth}** |"
            f"\n\n**Verdict:** {says}")
