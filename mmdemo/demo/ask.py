"""The Ask tab with a typed question: the answer, its probabilities, the truth, the step maps and the step views."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from mmdemo.config import ModelConfig
from mmdemo.demo.models import answered, get_predictor
from mmdemo.demo.scenes import Edit, Scenes
from mmdemo.demo.views import Frame, Slider, View, build_view, frame, maps_title, slider
from mmdemo.errors import InputError
from mmdemo.inference import IMAGE_NOTICE, Prediction, Predictor
from mmdemo.plots import HOP_NAMES, hop_maps
from mmdemo.registry import Registry
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import scope
from mmdemo.tasks.sort_of_clevr.hearing import KIND_WORDS, Hearing
from mmdemo.tasks.sort_of_clevr.reading import question_roles

EMPTY_ANSWER = ("**Start here:** click an example on the left (or **New random scene**). The answer appears here, with the "
                "picture of where the model looked; then press **▶ Play** to watch it read the question word by word.")
TRACE_CAPTION = ("**Object trace**: how much of each hop's attention falls on each object at every step (the weights of the 5 x 5 "
                 "regions the object touches). The named object is drawn thick, the answer object dashed. Two objects in one "
                 "region both count its weight, so a step's values can add up to more than 1.")
KINDS_MARKDOWN = "**What you can ask**: six kinds of question about one of the six colours (red, green, blue, orange, gray, yellow).\n\n" + "\n".join(
    f"- {kind}: *{example}*" for kind, example in scope.KINDS) + "\n\nOther questions, other languages and other images get a notice, not an answer."
STEP_LABEL = "RNN step (token)"


@dataclass
class Answer:
    """What an ask shows: the answer, probabilities, step maps, the step views at the first step, the truth."""

    markdown: str
    probs: dict[str, float]
    maps: dict  # plotly figure spec: both hops, every step
    frame: Frame  # overlay, token strip, object trace at view.step, hop 1
    slider: Slider
    truth: str
    view: View
    heard: dict | None = None  # the spoken question against time; None: hidden (a typed question)


@dataclass
class EditAnswer:
    """The editor's outcome and, when the edit was done, the edited scene asked again (None: not asked)."""

    edit: Edit
    answer: Answer | None


def heard_markdown(h: Hearing) -> str:
    """What a spoken model heard, in words, with the heard head's probabilities (a mishearing shows as one)."""
    scope = f"; one of the six kinds of question: {100 * h.scope_prob:.0f}%" if h.scope_prob is not None else ""
    return (f"**What I heard:** the **{h.colour}** object ({100 * h.colour_prob:.0f}%), asking **{KIND_WORDS[h.kind]}** "
            f"({100 * h.kind_prob:.0f}%){scope}; {h.speech_seconds:.2f} s of speech.")


def answer_markdown(pred: Prediction, cfg: ModelConfig) -> str:
    """The answer headline; out of domain (Prediction.in_domain false): the notice first and the answer greyed.
    Spoken: no question heard gives the notice and no answer; speech that is not a task question, or an unsure colour or kind,
    asks again, the answer greyed."""
    if not pred.answered:
        return f"<div class='out-of-domain' id='not-heard'><strong>No question heard.</strong> {html.escape(pred.notice)}</div>"
    conf = f"{100 * pred.probs[pred.answer]:.1f}%"
    heard = f"\n\n{heard_markdown(pred.hearing)}" if pred.hearing and pred.hearing.colour else ""
    if pred.hearing and pred.hearing.colour and not pred.hearing.sure and pred.in_domain:
        ask = "Please ask again:" if pred.hearing.doubt == "scope" else "Please repeat:"
        return (f"<div class='out-of-domain' id='unsure'><strong>{ask}</strong> {html.escape(pred.notice)}</div>{heard}\n\n"
                f"<span class='anyway'>What it would say anyway: {html.escape(pred.answer)} ({conf}), not to be trusted.</span>")
    if not pred.in_domain:
        photos = " For photos use the <strong>Photos</strong> tab." if IMAGE_NOTICE in pred.notice else ""
        return (f"<div class='out-of-domain' id='out-of-domain'><strong>Out of domain:</strong> {html.escape(pred.notice)}{photos}</div>\n\n"
                f"<span class='anyway'>What it would say anyway: {html.escape(pred.answer)} ({conf}), which means nothing here.</span>")
    cut = " (the question was cut to the first tokens the model reads)" if pred.truncated else ""
    note = "" if cfg.has_region_attention else f" This `{cfg.fusion}` model has no attention: its maps are uniform."
    if pred.step_times:
        cut = f"; heard {pred.audio_seconds:.2f} s in {len(pred.step_times)} steps"
    note += f"\n\n**Note:** {html.escape(pred.notice)}" if pred.notice else ""
    kinds = ""
    if cfg.task == "sort-of-clevr":
        kinds = "\n\nBy kind of answer: " + " · ".join(
            f"{kind} {100 * sum(pred.probs.get(a, 0.0) for a in answers):.1f}%" for kind, answers in soc.ANSWER_KINDS)
    return f"## {html.escape(pred.answer)}\nconfidence {conf}{cut}.{note}{kinds}{heard}"


def truth_markdown(scene: soc.Scene | None, question: str, pred: Prediction, cfg: ModelConfig, view: View, said: dict | None = None) -> str:
    """The true answer, right or wrong, and where each hop looked at the colour word (generated scenes only)."""
    spoken = cfg.question_input == "audio"
    if scene is None:
        return "Ground truth is known only for generated scenes (**New random scene**, the examples, the scene editor)."
    if not pred.answered:
        return "No answer, so no verdict: no question was heard."
    if spoken and said is None:
        return "The words of this recording are not known here, so neither is the true answer: use **Speak this question** or a spoken example."
    if pred.question_scope is not None and not pred.in_domain:
        return "No true answer: the question is not one of the six kinds (listed under the question box)."
    truth = soc.true_answer(scene, question)
    if truth is None:
        return "The generator cannot work out a true answer for this wording (it parses the six kinds in their usual words)."
    verdict = "right" if truth == pred.answer else "wrong"
    lines = [f"True answer: **{truth}**; the model is **{verdict}**."]
    s = view.colour_step
    roles = question_roles(scene, question)
    if cfg.has_region_attention and s >= 0 and roles:
        mass = view.trace.mass  # (T, K, O)
        objs = list(scene.objects)
        named = next(i for i, o in enumerate(objs) if roles.get(o.colour) == "named")
        parts = [f"{HOP_NAMES[0]} puts {100 * mass[s, 0, named]:.0f}% of its weight on the {objs[named].colour} object"]
        answers = [i for i, o in enumerate(objs) if roles.get(o.colour) == "answer"]
        if answers and mass.shape[1] > 1:
            on = sum(mass[s, 1, i] for i in answers)  # regions can hold two objects: an upper bound for counts
            what = ", ".join(f"{objs[i].colour} {objs[i].shape}" for i in answers)
            parts.append(f"{HOP_NAMES[1]} {100 * min(on, 1.0):.0f}% on the answer object{'s' if len(answers) > 1 else ''} ({what})")
        when = f"When the colour word has been heard ({pred.tokens[s]}, step {s})" if spoken else f"At the colour word ('{html.escape(pred.tokens[s])}', step {s})"
        lines.append(f"{when}: " + "; ".join(parts) + ".")
    return "\n\n".join(lines)


def answer_of(pred: Prediction, predictor: Predictor, scene: soc.Scene | None, question: str, view: View, maps: dict,
              step_label: str, heard: dict | None = None, said: dict | None = None) -> Answer:
    """The Answer both asks (typed and spoken) show, opened at the view's first step and hop 1."""
    cfg = predictor.cfg
    return Answer(answer_markdown(pred, cfg), pred.probs, maps, frame(view, view.step, 0), slider(view, step_label),
                  truth_markdown(scene, question, pred, cfg, view, said), view, heard)


class Ask:
    """A typed question about an image, on one of the registry's scene checkpoints."""

    def __init__(self, registry: Registry, scenes: Scenes) -> None:
        self.registry = registry
        self.scenes = scenes

    def ask(self, image: Any, question: str, checkpoint: str | None, state: dict | None) -> Answer:
        """The answer; state: the session's generated scene (its truth counts only for its own pixels)."""
        predictor, pixels, pred = answered(self.registry, checkpoint, image, question)
        scene = self.scenes.scene_of(pixels, predictor.cfg.image_size, state)
        view = build_view(pred, pixels, predictor.cfg, scene, question)
        maps = hop_maps(view.hops, pred.tokens, tuple(pred.grid), view.colour_step, maps_title(view, "Where each step looked (5 x 5 maps)"))
        return answer_of(pred, predictor, scene, question, view, maps, STEP_LABEL)

    def answer_json(self, image: Any, question: str, checkpoint: str | None) -> dict:
        """The Prediction as JSON (the predict --json contract), no pictures."""
        return get_predictor(self.registry, checkpoint).predict(image, question).to_dict()

    def edit_and_ask(self, state: dict | None, colour: str, action: str, x: float, y: float, other: str, question: str,
                     checkpoint: str | None) -> EditAnswer:
        """A counterfactual of the session's scene, asked again. A refused edit, or a question that cannot be asked
        about the edited scene, is a message: nothing else changes."""
        edit = self.scenes.edit(state, colour, action, x, y, other)
        if edit.scene is None:
            return EditAnswer(edit, None)
        try:
            return EditAnswer(edit, self.ask(edit.scene.image, question, checkpoint, edit.scene.state))
        except InputError as e:
            edit.message += f" The question could not be asked: {e}"
            return EditAnswer(edit, None)

