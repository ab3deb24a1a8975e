"""Accuracy and attention grounding on the spec's 200-image test split (typed, or spoken in held-out voices)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mmdemo.model import FusionRNN
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.batches import QuestionBatch, SpokenBatch
from mmdemo.tasks.sort_of_clevr.heard_scope import HeardScope, summarise
from mmdemo.tasks.sort_of_clevr.hearing import NO_THRESHOLDS, Thresholds
from mmdemo.tasks.sort_of_clevr.reading import READING_KEYS, Answered, reading_metrics
from mmdemo.tasks.sort_of_clevr.supervision import colour_step

if TYPE_CHECKING:
    from mmdemo.tasks.sort_of_clevr.spoken import SpokenPool

GROUPS = {
    "nonrelational": soc.NONREL,
    "relational": soc.REL,
    "closest_furthest": ("closest", "furthest"),
    "count": ("count",),
}


VAL_IMAGES = 200  # `evaluate --split val`: validation images, as many as the test split has


def holds(region: int, grid: int, obj: soc.SceneObject) -> bool:
    """Whether the region holds the object, by the one region rule (data.region_masks)."""
    return bool(soc.region_masks([obj], grid)[region])


def most_attended_region(region_attention: np.ndarray, num_tokens: int) -> int:
    """The region of the single largest hop-1 weight over all real steps of one question."""
    att = region_attention[:num_tokens]  # (T, R)
    return int(np.unravel_index(np.argmax(att), att.shape)[1])


def spoken_test_pool(samples: list[soc.Sample], model: FusionRNN, folder: str | Path, workers: int = 0, progress: bool = False,
                     condition: str = "mixed", split: str = "test") -> SpokenPool:
    """The samples' questions in the split's voices (test: held out), rendered under `condition` (one
    utterance each, in order), from the cache in `folder`."""
    from mmdemo.tasks.sort_of_clevr import spoken

    plan = spoken.plan_questions(samples, split, condition=condition)
    return spoken.load_pool(plan, folder, split, spoken.feature_settings(model.cfg), workers, progress)


@torch.inference_mode()
def predict_samples(
    model: FusionRNN, samples: list[soc.Sample], device: torch.device, images_per_batch: int = 50, spoken: SpokenPool | None = None,
    heard_scope: HeardScope | None = None,
) -> Iterator[Answered]:
    """Every question of every sample, answered, with its per-step attention. Spoken models hear the
    questions from `spoken`, a SpokenPool with one utterance per question in order (spoken_test_pool), and
    with `heard_scope` each gets the detector's probability that it was a task question."""
    model.eval()
    audio = model.cfg.question_input == "audio"
    if audio and spoken is None:
        raise ValueError("a spoken model needs the questions' utterances (evaluate.spoken_test_pool)")
    first = 0  # utterance of the chunk's first question
    for start in range(0, len(samples), images_per_batch):
        chunk = samples[start : start + images_per_batch]
        pixels = np.stack([s.image for s in chunk])
        if audio:
            ids, n = [], first
            for s in chunk:
                ids.append(list(range(n, n + len(s.questions))))
                n += len(s.questions)
            batch = SpokenBatch(pixels, [s.questions for s in chunk], ids, spoken, model.cfg).to(device)
            first = n
        else:
            batch = QuestionBatch(pixels, [s.questions for s in chunk], model.cfg).to(device)
        out = model(batch.images, batch.question, batch.question_mask, batch.image_index)
        preds = out.logits.argmax(-1).cpu().tolist()
        hops = out.hop_attention.float().cpu().numpy()  # (B, T, K, R)
        lengths = out.step_mask.sum(1).cpu().tolist()
        tokens = [[] for _ in preds] if audio else batch.token_ids.cpu().tolist()
        steps = batch.colour_steps() if audio else [None] * len(preds)
        heard = out.heard.float().cpu().numpy() if out.heard is not None else None  # (B, T, C)
        scope = [None] * len(preds)
        if heard_scope is not None and out.heard is not None:
            scope = heard_scope.probability(summarise(out.states, out.heard, out.step_mask).cpu()).tolist()
        for i, q in enumerate(batch.questions):
            k = int(batch.image_index[i])
            n = lengths[i]
            yield Answered(q, chunk[k].scene, start + k, model.cfg.labels[preds[i]], tokens[i][:n], hops[i, :n], steps[i],
                           heard[i, n - 1] if heard is not None else None, scope[i])


def heard_figures(answered: list[Answered], negates: list[bool], thresholds: Thresholds) -> dict:
    """What the heard head named at the last step against what was said: colour and kind accuracy, and at the
    checkpoint's unsure thresholds how often the app would ask to repeat (not a task question, the colour, the kind) and how
    right the rest are."""
    from mmdemo.tasks.sort_of_clevr.hearing import heard_kind, read_heard

    colour_ok, kind_ok, doubts, right_sure = [], [], [], []
    for a, negate in zip(answered, negates):
        colours, kinds = read_heard(a.heard)
        colour, kind = max(colours, key=colours.get), max(kinds, key=kinds.get)
        colour_ok.append(colour == a.question.colour)
        kind_ok.append(kind == heard_kind(a.question.subtype, negate))
        doubts.append(thresholds.doubt(colours[colour], kinds[kind], a.scope_prob))
        if not doubts[-1]:
            right_sure.append(a.prediction == a.question.answer)
    return {"colour": round(float(np.mean(colour_ok)), 4), "kind": round(float(np.mean(kind_ok)), 4),
            "unsure": round(float(np.mean([d != "" for d in doubts])), 4),
            "unsure_colour": round(float(np.mean([d == "colour" for d in doubts])), 4),
            "unsure_kind": round(float(np.mean([d == "kind" for d in doubts])), 4),
            "unsure_scope": round(float(np.mean([d == "scope" for d in doubts])), 4),
            "threshold": thresholds.colour, "kind_threshold": thresholds.kind, "scope_threshold": thresholds.scope,
            "accuracy_when_sure": round(float(np.mean(right_sure)), 4) if right_sure else None}


def accuracy_by(answered: list[Answered], keys: list[str]) -> dict[str, dict]:
    """Non-relational and relational accuracy (and counts) per key (a synthesizer, a voice)."""
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for a, key in zip(answered, keys):
        groups[key][a.question.family].append(a.prediction == a.question.answer)
    return {key: {"nonrelational": round(float(np.mean(g["nonrelational"])), 4) if g["nonrelational"] else None,
                  "relational": round(float(np.mean(g["relational"])), 4) if g["relational"] else None,
                  "questions": len(g["nonrelational"]) + len(g["relational"])} for key, g in sorted(groups.items())}


def evaluate_model(
    model: FusionRNN, device: torch.device, samples: list[soc.Sample] | None = None, per_wording: bool = False,
    spoken_data: str | Path = "data/spoken", synth_workers: int = 0, progress: bool = False, condition: str = "mixed",
    thresholds: Thresholds = NO_THRESHOLDS, split: str = "test", heard_scope: HeardScope | None = None,
) -> dict:
    """Accuracy per question group, the grounding rate and the reading figures (reading.py; None when the
    fusion has no attention); per_wording adds accuracy per question template ("per_wording": {template: accuracy}).

    Spoken models hear every question in a held-out voice (synthesized into spoken_data when not cached),
    rendered under `condition` (spoken.CONDITIONS); grounding follows the typed rule (hop 1's largest weight
    over all steps on the named object; at the colour word itself is `onset`). They also get accuracy per synthesizer and per voice, and what
    the heard head named (heard_figures, at the unsure thresholds)."""
    samples = samples if samples is not None else soc.test_split()
    audio = model.cfg.question_input == "audio"
    pool = spoken_test_pool(samples, model, spoken_data, synth_workers, progress, condition, split) if audio else None
    right: dict[str, list[bool]] = defaultdict(list)
    by_template: dict[str, list[bool]] = defaultdict(list)
    grounded: list[bool] = []
    grounded_read: list[bool] = []  # the same rule over the steps from the colour word on (what a reader can know)
    answered = list(predict_samples(model, samples, device, spoken=pool, heard_scope=heard_scope))
    for a in answered:
        q = a.question
        right[q.subtype].append(a.prediction == q.answer)
        by_template[f"{q.subtype}: {q.template}"].append(a.prediction == q.answer)
        if q.family == "nonrelational":  # typed and spoken alike: hop 1's largest weight over all steps
            named, steps = a.scene.find(q.colour), len(a.hops)
            grounded.append(holds(most_attended_region(a.hops[:, 0], steps), model.cfg.grid, named))
            s = a.colour_step if audio else colour_step(a.token_ids)  # spoken: the first step that has heard the colour word
            if s is not None and s >= 0 or not audio:
                s = max(s, 0)
                grounded_read.append(holds(most_attended_region(a.hops[s:, 0], steps - s), model.cfg.grid, named))
    attention = model.cfg.has_region_attention
    metrics: dict = {}
    for group, subtypes in GROUPS.items():
        hits = [h for s in subtypes for h in right[s]]
        metrics[group] = round(float(np.mean(hits)), 4) if hits else None
    metrics["overall"] = round(float(np.mean([h for hs in right.values() for h in hs])), 4)
    metrics["grounding"] = round(float(np.mean(grounded)), 4) if attention and grounded else None
    metrics["grounding_read"] = round(float(np.mean(grounded_read)), 4) if attention and grounded_read else None
    metrics["per_subtype"] = {s: round(float(np.mean(h)), 4) for s, h in sorted(right.items())}
    metrics["num_questions"] = sum(len(h) for h in right.values())
    metrics["num_images"] = len(samples)
    if audio:
        from mmdemo.tasks.sort_of_clevr.spoken import SPLIT_VOICES  # loaded already by spoken_test_pool

        metrics["voices"] = SPLIT_VOICES[split]
        metrics["condition"] = condition
        metrics["colour_word_found"] = round(float(np.mean([a.colour_step is not None and a.colour_step >= 0 for a in answered])), 4)
        metrics["per_synth"] = accuracy_by(answered, [u.synth for u in pool.utterances])
        # eSpeak's 304 held-out voices get ~4 questions each: reported by dialect (its variants pooled)
        metrics["per_voice"] = accuracy_by(answered, [f"{u.synth}:{u.voice.split('+')[0] if u.synth == 'espeak' else u.voice}" for u in pool.utterances])
        if answered and answered[0].heard is not None:
            metrics["heard"] = heard_figures(answered, [u.negate for u in pool.utterances], thresholds)
    if attention:
        metrics.update(reading_metrics(answered, model.cfg.grid))
    else:  # sum and concat look everywhere evenly: no reading to check
        metrics.update({key: None for key in READING_KEYS})
    if per_wording:
        metrics["per_wording"] = {t: round(float(np.mean(h)), 4) for t, h in sorted(by_template.items())}
    return metrics
