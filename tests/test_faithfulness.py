"""Faithfulness (issue 31): edits whose new truth comes from the generator, region blanking, the metrics, the command."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmdemo.attribution import Attribution
from mmdemo.checkpoint import DEFAULT, read_config
from mmdemo.config import ModelConfig
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import faithfulness as ff
from mmdemo.tasks.sort_of_clevr.supervision import hop2_objects
from mmdemo.text import tokenize

GRID = 5


def _scene() -> soc.Scene:
    return soc.generate("test", 1)[0].scene


def _question(scene: soc.Scene, subtype: str, colour: str) -> soc.Question:
    return soc.make_question(scene, subtype, colour, np.random.default_rng(0))


def _weights_on(scene: soc.Scene, colour: str) -> np.ndarray:
    """A look with all its mass on the regions of the object of `colour`."""
    mask = soc.region_masks([scene.find(colour)], GRID).astype(np.float64)
    return mask / mask.sum()


def test_new_truth_is_recomputed_by_the_generator() -> None:
    """Removing the closest object makes the next closest one's shape the truth."""
    scene = _scene()
    named = scene.objects[0]
    q = _question(scene, "closest", named.colour)
    closest = hop2_objects(scene, q)[0]
    edited, kind = ff.looked_edit(scene, q, closest, "remove")
    assert kind == "remove" and closest not in edited.objects and len(edited.objects) == len(scene.objects) - 1
    others = sorted((o for o in edited.objects if o is not named), key=lambda o: (o.x - named.x) ** 2 + (o.y - named.y) ** 2)
    assert ff.truth(edited, q, negate=False) == others[0].shape


def test_measure_scores_against_the_generator_not_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stub model that always gives each question's original answer, whatever the image: it follows no edit
    that changes the truth (it would score 100% if the new truth were taken from the model) and ignores every ignored edit."""
    cfg = ModelConfig.from_dict(read_config(DEFAULT)["model"])

    def stub(model, images, questions, index, device):  # run_pairs' signature
        ids, _ = tokenize([q.text for q in questions], cfg.max_tokens)
        probs = np.eye(len(cfg.labels))[[cfg.labels.index(q.answer) for q in questions]]
        hops = [np.full((len(t), cfg.num_hops, GRID * GRID), 1.0 / GRID**2) for t in ids]
        return probs, hops, ids

    def even(model, images, questions, index, labels, device, ig_steps=None):  # attributions' signature
        flat = np.full((len(questions), GRID * GRID), 1.0 / GRID**2)
        return Attribution(flat, flat, flat, np.zeros(len(questions)), np.zeros(len(questions)))

    monkeypatch.setattr(ff, "run_pairs", stub)
    monkeypatch.setattr(ff, "attributions", even)
    fig = ff.measure(SimpleNamespace(cfg=cfg), soc.generate("test", 2), torch.device("cpu"))["overall"]
    for rule in ("", "_remove"):
        assert fig[f"follows{rule}_n"] > 5 and fig[f"follows{rule}"] == 0.0
        assert fig[f"ignores{rule}_n"] > 5 and fig[f"ignores{rule}"] == 1.0
    assert fig["comprehensiveness@1"] == 0.0 and fig["sufficiency@3"] == 0.0


def test_named_object_is_changed_not_removed() -> None:
    scene = _scene()
    named = scene.objects[2]
    q = _question(scene, "shape", named.colour)
    for rule in ff.RULES:
        edited, kind = ff.looked_edit(scene, q, named, rule)
        assert kind == "reshape" and ff.truth(edited, q, negate=False) != q.answer  # reshaped: the shape flipped
    q = _question(scene, "left", named.colour)
    edited, kind = ff.looked_edit(scene, q, named)
    assert kind == "move" and edited.find(named.colour).y == named.y and edited.find(named.colour).x != named.x


def test_six_objects_rule_keeps_six_objects_and_the_truth_moves_with_it() -> None:
    """The headline rule never removes: a looked-at object of a count question is reshaped (the count moves by one),
    one of a closest question moves to its mirror spot; the control moves an ignored object."""
    for sample in soc.generate("test", 5):
        scene = sample.scene
        for q in sample.questions:
            named = scene.find(q.colour)
            other = next(o for o in scene.objects if o is not named)
            edited, kind = ff.looked_edit(scene, q, other)
            assert len(edited.objects) == 6 and kind in ("reshape", "move")
            if q.subtype == "count":
                assert kind == "reshape" and abs(int(ff.truth(edited, q, False)) - int(q.answer)) == 1
            moved = ff.ignored_edit(scene, q, other)
            assert len(moved.objects) == 6 and [o.colour for o in moved.objects] == [o.colour for o in scene.objects]
            if q.subtype == "count":  # a move never changes a count
                assert ff.truth(moved, q, False) == q.answer
            far = ff.moved_enough(scene, moved, other.colour)
            spot = moved.find(other.colour)
            assert far == (((spot.x - other.x) ** 2 + (spot.y - other.y) ** 2) ** 0.5 >= soc.MIN_GAP)


def test_the_control_never_counts_a_move_that_stays_put() -> None:
    """An object at the centre mirrors onto itself: that is no edit, so it is never the ignored object."""
    scene = soc.Scene((soc.SceneObject("red", "square", 10, 10), soc.SceneObject("green", "circle", 37, 37),
                       soc.SceneObject("blue", "circle", 60, 15), soc.SceneObject("orange", "square", 15, 60),
                       soc.SceneObject("gray", "square", 60, 60), soc.SceneObject("yellow", "circle", 30, 62)))
    q = _question(scene, "shape", "red")
    assert not ff.moved_enough(scene, ff.ignored_edit(scene, q, scene.find("green")), "green")
    w = _weights_on(scene, "blue")  # the green one has no weight at all: the least looked at
    ignored = ff.ignored_object(scene, q, w, GRID)
    assert ignored is not None and ignored.colour != "green"
    assert ff.ignored_object(scene, q, w, GRID, rule="remove").colour == "green"


def test_ignored_object_keeps_the_truth() -> None:
    found = 0
    for sample in soc.generate("test", 5):
        scene = sample.scene
        for q in sample.questions:
            neg = ff.negated(scene, q)
            w = _weights_on(scene, q.colour)
            for rule in ff.RULES:
                ignored = ff.ignored_object(scene, q, w, GRID, neg, rule)
                if ignored is None:
                    continue
                found += 1
                assert ignored.colour != q.colour
                assert ff.truth(ff.ignored_edit(scene, q, ignored, rule), q, neg) == q.answer
    assert found > 100


def test_ignored_object_is_the_least_looked_at() -> None:
    scene = _scene()
    named, a, b = scene.objects[0], scene.objects[1], scene.objects[2]
    q = _question(scene, "shape", named.colour)  # any removal but the named one keeps a shape answer
    w = np.full(GRID * GRID, 1.0)
    for o, weight in ((named, 50.0), (a, 20.0)):
        w[soc.region_masks([o], GRID)] += weight
    w[soc.region_masks([b], GRID)] = 0.0  # b: nothing on any of its regions
    w /= w.sum()
    assert ff.ignored_object(scene, q, w, GRID) == b


def test_blanking_whitens_exactly_those_regions() -> None:
    image = np.zeros((soc.SIZE, soc.SIZE, 3), dtype=np.uint8)
    out = ff.blank_regions(image, [0, 12], GRID)
    assert (out[:15, :15] == 255).all() and (out[30:45, 30:45] == 255).all()
    assert (out == 255).all(-1).sum() == 2 * 15 * 15 and image.max() == 0  # nothing else; the input is untouched
    kept = ff.blank_regions(image, [0, 12], GRID, keep=True)
    assert (kept[:15, :15] == 0).all() and (kept[30:45, 30:45] == 0).all()
    assert (kept == 255).all(-1).sum() == 23 * 15 * 15
    assert ff.top_regions(np.array([0.1, 0.5, 0.1, 0.3]), 2) == [1, 3]


def test_metrics_on_a_hand_made_case() -> None:
    both = {rule: ff.EditCase(True, True, "reshape", True) for rule in ff.RULES}
    none = {"six": ff.EditCase(False, None, "move", False), "remove": ff.EditCase(None, None, None, None)}
    cases = [ff.Case("count", both, {1: 0.5, 3: 0.7}, {1: 0.1, 3: 0.0}, {"attention_named": True, "ig_named": False}, (1.0, 1.0, 4.0)),
             ff.Case("count", none, {1: 0.1, 3: 0.1}, {1: 0.3, 3: 0.2}, {"attention_named": True}, (-3.0, -3.0, 2.0), shift=1)]
    fig = ff.summarize(cases, has_attention=True, num_images=1, attribution_images=1)["overall"]
    assert (fig["follows"], fig["follows_n"], fig["ignores"], fig["ignores_n"]) == (1.0, 1, 0.5, 2)
    assert (fig["follows_remove"], fig["ignores_remove"], fig["ignores_remove_n"], fig["looked_edits_remove"]) == (1.0, 1.0, 1, 1)
    assert fig["comprehensiveness@1"] == 0.3 and fig["sufficiency@3"] == 0.1
    assert (fig["pointing_attention_named"], fig["pointing_attention_named_n"], fig["pointing_ig_named_n"]) == (1.0, 2, 1)
    assert fig["ig_gap_median"] == 2.0 and fig["ig_gap_relative_median"] == pytest.approx((0.25 + 1.5) / 2)
    assert fig["ig_gap_vs_captum_max"] == 0.0 and fig["count_shift_remove"] == {"+1": 1}


def test_pointing_hits_the_named_and_the_answer_object() -> None:
    scene = _scene()
    named = scene.objects[0]
    q = _question(scene, "closest", named.colour)
    answer = hop2_objects(scene, q)[0]
    assert ff.pointing_hits(scene, q, _weights_on(scene, named.colour), GRID)[0]
    hit_named, hit_answer = ff.pointing_hits(scene, q, _weights_on(scene, answer.colour), GRID)
    assert hit_answer and hit_named == bool(soc.region_masks([named], GRID)[ff.top_regions(_weights_on(scene, answer.colour), 1)[0]])
    assert ff.pointing_hits(scene, _question(scene, "shape", named.colour), _weights_on(scene, named.colour), GRID)[1] is None


@pytest.mark.parametrize("args", [["--images", "0"], ["--images", "201"], ["--checkpoint", "/nonexistent"], ["--bogus"],
                                  ["--images", "5", "--attribution-images", "6"], ["--attribution-images", "-1"], ["--split", "train"],
                                  ["--images", "5", "--write"], ["--split", "val", "--write"]])
def test_command_bad_input_exits_2(args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "mmdemo.tasks.sort_of_clevr.faithfulness", *args], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
