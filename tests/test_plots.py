"""The pictures the app shows: overlays, step maps, object traces and the token strip (numpy in, no gradio)."""

from __future__ import annotations

import numpy as np

from mmdemo.plots import FADE, LOOKED, OUTLINE, figure, hop_maps, is_uniform, object_trace, overlay, token_strip
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.reading import colour_token_step, object_mass, question_roles, top_regions

TOKENS = ["[CLS]", "what", "shape", "is", "the", "object", "closest", "to", "the", "red", "object", "?", "[SEP]"]


def test_overlay_keeps_looked_at_colours_fades_the_rest_and_outlines() -> None:
    """Issue 29: the looked-at region keeps its pixels exactly (a colour task must not see colours change), the
    others fade towards white, the looked-at area is outlined, and uniform weights change nothing."""
    image = soc.render(soc.random_scene(soc.scene_rng("val", 1, 0)))
    weights = np.zeros(25)
    weights[7] = 1.0  # region (1, 2)
    out = overlay(image, weights, (5, 5))
    assert out.shape == (300, 300, 3) and out.dtype == np.uint8
    big = np.kron(image, np.ones((4, 4, 1), dtype=np.uint8)).astype(int)
    t = 3  # outline width at 4x
    assert np.array_equal(out[60 + t : 120 - t, 120 + t : 180 - t], big[60 + t : 120 - t, 120 + t : 180 - t])  # kept exactly
    assert (out[60:60 + t, 121:179] == OUTLINE).all() and (out[61:119, 120:120 + t] == OUTLINE).all()  # outlined
    far = out[1:59, 1:59].astype(int)  # region (0, 0): weight 0, faded towards white by FADE
    assert np.abs(far - (big[1:59, 1:59] * (1 - FADE) + 255 * FADE)).max() <= 1
    ink = (big[1:59, 1:59] < 250).any(-1)
    if ink.any():  # an object there is paler, never darker or another hue
        assert (far[ink] >= big[1:59, 1:59][ink]).all()
    plain = overlay(image, np.full(25, 1 / 25), (5, 5))
    assert is_uniform(np.full(25, 1 / 25)) and not is_uniform(weights)
    assert np.array_equal(plain[:58, :58], big[:58, :58]) and np.array_equal(plain[62:118, 62:118], big[62:118, 62:118])
    half = weights.copy()
    half[8] = LOOKED  # as strong as LOOKED of the strongest: looked at, kept
    assert np.array_equal(overlay(image, half, (5, 5))[60 + t : 120 - t, 180 + t : 240 - t], big[60 + t : 120 - t, 180 + t : 240 - t])


def test_hop_maps_show_every_step_and_hop_as_a_grid() -> None:
    rng = np.random.default_rng(0)
    hops = rng.dirichlet(np.ones(25), size=(len(TOKENS), 2))  # (T, K, R)
    fig = figure(hop_maps(hops, TOKENS, (5, 5), colour_step=9, title="t"))
    z = np.array(fig.data[0].z, dtype=float)
    assert z.shape == (2 * 6 - 1, len(TOKENS) * 6 - 1)
    for t in (0, 9):
        for k in (0, 1):
            assert np.allclose(z[k * 6 : k * 6 + 5, t * 6 : t * 6 + 5], hops[t, k].reshape(5, 5), atol=1e-4)
    assert np.isnan(z[5]).all() and np.isnan(z[:, 5]).all()  # blank gaps between the maps
    assert list(fig.layout.yaxis.ticktext) == ["hop 1 (find)", "hop 2 (relate)"]
    assert fig.layout.xaxis.ticktext[9] == "<b>red</b>" and len(fig.layout.shapes) == 1  # the colour word is boxed


def test_object_trace_has_one_line_per_object_and_hop_and_a_step_marker() -> None:
    mass = np.random.default_rng(1).random((len(TOKENS), 2, 6))
    names = [f"o{i}" for i in range(6)]
    fig = figure(object_trace(mass, TOKENS, names, ["#000"] * 6, ["named", "answer", "", "", "", ""], colour_step=9, step=3))
    assert len(fig.data) == 12 and fig.data[0].line.width > fig.data[2].line.width and fig.data[1].line.dash == "dash"
    assert np.allclose(fig.data[7].y, mass[:, 1, 1].round(4))
    markers = [s for s in fig.layout.shapes if s.name == "step"]
    assert len(markers) == 2 and all(s.x0 == 3 for s in markers) and fig.layout.meta["step"] == 3


def test_token_strip_marks_the_step_and_the_colour_word_and_escapes() -> None:
    strip = token_strip(["[CLS]", "<b>", "red", "[SEP]"], [0.1, 0.2, 0.6, 0.1], step=2, colour_step=2)
    assert 'data-step="2"' in strip and "<b>red</b> (the colour word)" in strip
    assert "&lt;b&gt;" in strip and strip.count('class="tok now colour"') == 1


def test_object_mass_roles_and_regions() -> None:
    scene = soc.random_scene(soc.scene_rng("val", 42, 0))
    roles = question_roles(scene, "What shape is the object closest to the red object?")
    assert roles["red"] == "named" and list(roles.values()).count("answer") == 1
    assert question_roles(scene, "How many things are there?") == {}
    count = question_roles(scene, "How many objects have the same shape as the red object?")
    assert count["red"] == "named" and all(o.shape == scene.find("red").shape for o in scene.objects if o.colour in count)
    hops = np.zeros((3, 2, 25))
    hops[:, :, 12] = 1.0  # everything on the centre region
    mass = object_mass(hops, scene.objects, 5)
    assert mass.shape == (3, 2, 6) and set(np.unique(mass)) <= {0.0, 1.0}
    assert top_regions(hops, 2)[0] == 12
    assert colour_token_step(TOKENS) == 9 and colour_token_step(["[CLS]", "grey", "[SEP]"]) == 1 and colour_token_step(["a"]) == -1
