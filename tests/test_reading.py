"""Reading word by word: every shipped causal model's step t depends on tokens 1..t only, and the per-step
figures of mmdemo.tasks.sort_of_clevr.reading score a reader and a peeker as they should."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from mmdemo.checkpoint import find_checkpoints, load_checkpoint
from mmdemo.model import FusionRNN
from mmdemo.processing import images_to_tensor, pad_token_ids
from mmdemo.registry import Registry
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.reading import Answered, causal_pairs, reading_metrics, step_scores
from mmdemo.tasks.sort_of_clevr.supervision import colour_step, hop2_objects
from mmdemo.text import tokenize

PREFIX = "What shape is the object closest to the"
ENDINGS = ("green object?", "red thing over there? Thanks a lot.", "yellow one")


def prefix_outputs(model: FusionRNN) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Hop attention (3, T, K, R) and states (3, T, H) for three questions that share PREFIX; and its length."""
    cfg = model.cfg
    ids, _ = tokenize([f"{PREFIX} {end}" for end in ENDINGS], cfg.max_tokens)
    shared = len(tokenize([PREFIX], cfg.max_tokens)[0][0]) - 1  # [CLS] + the prefix's words, without [SEP]
    assert all(row[:shared] == ids[0][:shared] for row in ids) and ids[0][shared] != ids[1][shared]
    size = cfg.image_size
    image = np.array(soc.render(soc.generate("test", 1)[0].scene)) if size == soc.SIZE else np.full((size, size, 3), 200, np.uint8)
    with torch.inference_mode():
        out = model(images_to_tensor(image[None]), *pad_token_ids(ids), image_index=torch.zeros(3, dtype=torch.long))
    return out.hop_attention, out.states, shared


def heard_outputs(model: FusionRNN) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Hop attention and states for three recordings that share their first second; the steps that ended by then."""
    from mmdemo.audio import log_mel

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    first = (0.3 * np.sin(2 * np.pi * 220 * t[:16000]) * (1 + np.sin(2 * np.pi * 3 * t[:16000]))).astype(np.float32)
    recordings = [np.concatenate([first, (0.2 * rng.standard_normal(16000)).astype(np.float32)]) for _ in range(3)]
    frames = torch.stack([log_mel(r) for r in recordings])  # (3, L, M)
    image = np.array(soc.render(soc.generate("test", 1)[0].scene))
    with torch.inference_mode():
        out = model(images_to_tensor(image[None]), frames, torch.ones(frames.shape[:2], dtype=torch.bool), image_index=torch.zeros(3, dtype=torch.long))
    return out.hop_attention, out.states, int(1.0 / model.cfg.step_seconds)


@pytest.mark.parametrize("folder", find_checkpoints(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_checkpoints_are_causal_or_say_they_read_ahead(folder) -> None:
    model, _ = load_checkpoint(folder, "cpu")
    if model.cfg.question_input == "audio":  # heard, not read: a step that ended by 1 s is the same whatever follows
        hops, states, shared = heard_outputs(model)
    else:
        hops, states, shared = prefix_outputs(model)
    if model.cfg.causal:  # steps <= t: identical whatever follows
        for other in (1, 2):
            torch.testing.assert_close(hops[other, :shared], hops[0, :shared], rtol=0, atol=1e-5)
            torch.testing.assert_close(states[other, :shared], states[0, :shared], rtol=0, atol=1e-5)
    elif model.cfg.modality != "image":  # labelled "reads ahead" in the app: and it does, so the label is true
        assert (states[1, :shared] - states[0, :shared]).abs().max() > 1e-3, folder
    # (the image-only baseline blanks the words: it reads nothing, ahead or not)
    assert ("(reads the whole question first)" in Registry().label(folder)) is (not model.cfg.causal)


@pytest.mark.parametrize("text_encoder", ["minilm", "minilm_static", "learned"])
@pytest.mark.parametrize("fusion", ["sum", "attention"])
def test_causal_config_ignores_the_future(text_encoder: str, fusion: str) -> None:
    model = FusionRNN(tiny_config(text_encoder=text_encoder, fusion=fusion, causal=True)).eval()
    hops, states, shared = prefix_outputs(model)
    torch.testing.assert_close(hops[1, :shared], hops[0, :shared], rtol=0, atol=1e-5)
    torch.testing.assert_close(states[2, :shared], states[0, :shared], rtol=0, atol=1e-5)
    assert (states[1, shared:] - states[0, shared:]).abs().max() > 1e-4  # and the future does count later


def test_reads_ahead_config_sees_the_future() -> None:
    model = FusionRNN(tiny_config(causal=False)).eval()
    _, states, shared = prefix_outputs(model)
    assert (states[1, :shared] - states[0, :shared]).abs().max() > 1e-4


def _answered(question: soc.Question, scene: soc.Scene, hops: np.ndarray, ids: list[int], image_id: int = 0) -> Answered:
    return Answered(question, scene, image_id, question.answer, ids, hops)


@pytest.fixture(scope="module")
def example() -> tuple[soc.Scene, soc.Question, list[int]]:
    rng = np.random.default_rng(5)
    scene = soc.random_scene(rng)
    q = soc.make_question(scene, "closest", "green", rng)
    ids = tokenize([q.text], 32)[0][0]
    return scene, q, ids


def test_a_reader_scores_no_peek_zero_and_full_onset(example) -> None:
    scene, q, ids = example
    t, r, s = len(ids), 25, colour_step(ids)
    named = soc.region_masks([scene.find("green")], 5).astype(float)
    answer = soc.region_masks(hop2_objects(scene, q), 5).astype(float)
    hops = np.full((t, 2, r), 1.0 / r)  # before the colour word: nowhere in particular
    hops[s:, 0] = named / named.sum()  # from the colour word on: the named object (hop 1), the answer object (hop 2)
    hops[s:, 1] = answer / answer.sum()
    scores = step_scores(_answered(q, scene, hops, ids), 5)
    assert abs(scores["no_peek"]) < 0.05 and scores["onset"] == 1.0 and scores["relate"] == 1.0
    assert scores["spread"] == pytest.approx(1.0)  # nothing named yet, nothing preferred


def test_a_confident_look_at_an_unnamed_object_scores_low_spread_but_no_peek_zero(example) -> None:
    """no_peek cannot see a reader that stares at some object before any is named; spread can."""
    scene, q, ids = example
    t, r, s = len(ids), 25, colour_step(ids)
    hops = np.full((t, 2, r), 1.0 / r)
    others = [o for o in scene.objects if o.colour != "green"]
    stare = np.zeros(r)
    stare[int(np.flatnonzero(soc.region_masks([others[0]], 5) & ~soc.region_masks([scene.find("green")], 5))[0])] = 1.0
    hops[:s] = stare  # every hop on one region of another object
    scores = step_scores(_answered(q, scene, hops, ids), 5)
    assert scores["spread"] < 0.01
    assert scores["no_peek"] < 0.0  # on another object, not on the named one: no_peek calls it no peek


def test_a_peeker_scores_high_no_peek(example) -> None:
    scene, q, ids = example
    named = soc.region_masks([scene.find("green")], 5).astype(float)
    hops = np.repeat((named / named.sum())[None, None], len(ids), 0).repeat(2, 1)  # (T, 2, R): on the object from [CLS]
    scores = step_scores(_answered(q, scene, hops, ids), 5)
    assert scores["no_peek"] > 0.9 and scores["onset"] == 1.0
    assert scores["relate"] == 0.0  # hop 2 also on the named object: not the closest one


def test_causal_pairs_count_agreement_on_shared_steps(example) -> None:
    scene, q, ids = example
    rng = np.random.default_rng(0)
    other_q = soc.make_question(scene, "closest", "red", rng)
    other_ids = tokenize([other_q.text], 32)[0][0]
    shared = colour_step(ids)  # the two differ first at the colour word
    hops = rng.dirichlet(np.ones(25), size=(len(ids), 2))
    same = rng.dirichlet(np.ones(25), size=(len(other_ids), 2))
    same[:shared] = hops[:shared]
    assert causal_pairs([_answered(q, scene, hops, ids), _answered(other_q, scene, same, other_ids)]) == (1, 1)
    moved = same.copy()
    moved[shared - 1] = np.roll(moved[shared - 1], 1, axis=-1)
    assert causal_pairs([_answered(q, scene, hops, ids), _answered(other_q, scene, moved, other_ids)]) == (0, 1)
    metrics = reading_metrics([_answered(q, scene, hops, ids), _answered(other_q, scene, same, other_ids)], 5)
    assert metrics["causal"] == 1.0 and metrics["causal_pairs"] == 1 and set(metrics["reading_per_subtype"]) == {"closest"}
