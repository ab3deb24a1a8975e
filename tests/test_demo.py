"""The rooms behind the app's tabs (mmdemo.demo), each called as plain functions: no server, no gradio."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image

from mmdemo.checkpoint import save_checkpoint
from mmdemo.demo import Rooms, faith
from mmdemo.demo.compare import NO_SCENE, Comparison, faithfulness_markdown
from mmdemo.demo.model_card import faithful_sentence, heldout_sentence, model_card_text, photo_accuracy_clause
from mmdemo.demo.photos import example_files as photo_example_files
from mmdemo.demo.scenes import EXAMPLE_SEEDS, example_scene, pixel_key
from mmdemo.demo.views import advance, show_step, toggle_play
from mmdemo.demo.voice import SPOKEN_EXAMPLES, spoken_columns, spoken_examples
from mmdemo.errors import InputError
from mmdemo.model import FusionRNN
from mmdemo.plots import overlay
from mmdemo.registry import Registry
from mmdemo.results import FULL_BUDGET, GRID_BUDGET
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import scope

DEMO = Path(__file__).resolve().parent.parent / "mmdemo" / "demo"
SPOKEN_Q = "What shape is the object closest to the green object?"
speakable = pytest.mark.skipif(not __import__("mmdemo.tasks.sort_of_clevr.speech", fromlist=["available"]).available()[0],
                               reason="no speech synthesizer")


def tiny_match_config():
    return tiny_config(image_encoder="efficientnet_lite0", image_size=224, grid=7, labels=("match", "mismatch"), task="match", num_hops=1)


@pytest.fixture(scope="module")
def rooms(tmp_path_factory: pytest.TempPathFactory) -> Rooms:
    root = tmp_path_factory.mktemp("reg")
    save_checkpoint(FusionRNN(tiny_config()), root / "sort-of-clevr" / "default")
    save_checkpoint(FusionRNN(tiny_config()), root / "sort-of-clevr" / "attention-gru")
    save_checkpoint(FusionRNN(tiny_config(fusion="sum")), root / "sort-of-clevr" / "sum-rnn")
    save_checkpoint(FusionRNN(tiny_match_config()), root / "photos" / "match")
    save_checkpoint(FusionRNN(tiny_config(question_input="audio", audio_channels=8)), root / "sort-of-clevr" / "spoken")
    return Rooms.create(Registry(root, device="cpu"), root / "audio")


def gallery_photo() -> np.ndarray:
    from mmdemo.photos import gallery

    return gallery()[0].pixels


def test_no_room_imports_gradio() -> None:
    """The rooms are plain Python: a tab's work can be read and tested without gradio."""
    for path in sorted(DEMO.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "gradio" or n.startswith(("gradio.", "gradio_client")) for n in names), f"{path.name} imports {names}"


def test_the_rooms_ask_the_fusion_what_it_is() -> None:
    """Whether a model has region attention is ModelConfig.has_region_attention, never a fusion name compared here."""
    assert tiny_config().has_region_attention and not tiny_config(fusion="sum").has_region_attention
    for path in sorted(DEMO.glob("*.py")):
        assert not any(f'{op} "{f}"' in path.read_text() for op in ("==", "!=") for f in ("attention", "sum", "concat")), path.name


# ------------------------------------------------------------------------------------------ scenes


def test_random_scene_is_seeded_and_minus_one_is_new_every_time(rooms: Rooms) -> None:
    a, b = rooms.scenes.random(42), rooms.scenes.random(42)
    assert a.state == b.state and (a.image == b.image).all() and "seed 42" in a.caption
    drawn = {rooms.scenes.random(-1).caption for _ in range(3)}  # defect 2: -1 draws a new seed every click
    assert len(drawn) == 3 and all("seed" in c for c in drawn)


@pytest.mark.parametrize("seed", [1e30, 2**70, -5, 1.5])
def test_a_seed_past_the_limit_is_a_message(rooms: Rooms, seed: float) -> None:
    with pytest.raises(InputError, match="seed must be a whole number"):
        rooms.scenes.random(seed)


def test_edits_keep_the_gap_and_refusals_keep_the_image(rooms: Rooms) -> None:
    """Defects 4 and 6: a move onto another object lands on the nearest free spot (said so); a refused edit
    leaves the image alone and says why, without raising (no error badges over the image)."""
    state = rooms.scenes.random(42).state
    gray = next(o for o in state["objects"] if o["colour"] == "gray")
    q = "What shape is the red object?"
    out = rooms.ask.edit_and_ask(state, "red", "move", gray["x"], gray["y"], "", q, "sort-of-clevr/default")
    assert "nearest free spot" in out.edit.message and "Edited scene" in out.edit.scene.caption and out.answer.markdown.startswith("## ")
    objs = out.edit.scene.state["objects"]
    assert min(np.hypot(a["x"] - b["x"], a["y"] - b["y"]) for i, a in enumerate(objs) for b in objs[i + 1 :]) >= soc.MIN_GAP
    assert out.edit.scene.state["key"] == pixel_key(out.edit.scene.image)
    reshaped = rooms.ask.edit_and_ask(state, "red", "reshape", 0, 0, "", q, "sort-of-clevr/default")
    red = next(o for o in state["objects"] if o["colour"] == "red")
    assert f"True answer: **{'circle' if red['shape'] == 'square' else 'square'}**" in reshaped.answer.truth
    removed = rooms.ask.edit_and_ask(state, "red", "remove", 0, 0, "", q, "sort-of-clevr/default")
    assert "red" not in [o["colour"] for o in removed.edit.scene.state["objects"]]
    for refused, why in [(rooms.ask.edit_and_ask(None, "red", "move", 9, 9, "", "q", None), "needs a generated scene"),
                         (rooms.ask.edit_and_ask(removed.edit.scene.state, "red", "move", 9, 9, "", "q", None), "no red object")]:
        assert why in refused.edit.message and refused.edit.scene is None and refused.answer is None
    unaskable = rooms.ask.edit_and_ask(state, "red", "reshape", 0, 0, "", "   ", "sort-of-clevr/default")  # the scene changes, no answer
    assert unaskable.edit.scene is not None and unaskable.answer is None and "could not be asked" in unaskable.edit.message


# --------------------------------------------------------------------------------------------- ask


def test_ask_returns_answer_maps_overlay_trace_and_truth(rooms: Rooms) -> None:
    s = rooms.scenes.random(7)
    a = rooms.ask.ask(s.image, "What shape is the object closest to the red object?", "sort-of-clevr/default", s.state)
    assert a.heard is None  # no time plot for a typed question
    assert max(a.probs, key=a.probs.get) in a.markdown and "Out of domain" not in a.markdown
    view, tokens = a.view, a.view.tokens
    assert np.array(a.maps["data"][0]["z"], dtype=float).shape == (11, 6 * len(tokens) - 1)  # both hops, every step
    assert a.frame.overlay.shape == (300, 300, 3) and a.slider.value == tokens.index("red") == view.colour_step
    assert a.slider.maximum == len(tokens) - 1 and a.slider.label == "RNN step (token)"
    assert f'data-step="{a.slider.value}"' in a.frame.strip and len(a.frame.trace["data"]) == 2 * 6  # one line per object and hop
    assert "True answer" in a.truth and ("right" in a.truth or "wrong" in a.truth) and "At the colour word" in a.truth
    assert show_step(view, a.slider.value, 0) is None  # on screen already: nothing is sent again
    first, last = show_step(view, 0, 0), show_step(view, len(tokens) - 1, 1)
    for shown, (t, k) in ((first, (0, 0)), (last, (len(tokens) - 1, 1))):  # each view shows its own step and hop
        assert np.array_equal(shown.overlay, overlay(view.pixels, view.hops[t, k], view.grid))
    assert 'data-step="0"' in first.strip and [s["x0"] for s in last.trace["layout"]["shapes"] if s.get("name") == "step"] == [len(tokens) - 1] * 2
    assert show_step(None, 0, 0).overlay is None  # no answer yet: the views stay empty


def test_truth_belongs_to_the_pixels_asked_about(rooms: Rooms) -> None:
    """Defect 1: after a generated scene, an example carries its own truth and any other image has none."""
    question = "What shape is the red object?"
    state = rooms.scenes.random(11).state
    example = example_scene(EXAMPLE_SEEDS[0])
    truth = rooms.ask.ask(soc.render(example), question, "sort-of-clevr/default", state).truth
    assert f"True answer: **{soc.true_answer(example, question)}**" in truth
    other = soc.render(example_scene(5))  # a generated scene the app did not make: no truth
    assert "only for generated scenes" in rooms.ask.ask(other, question, "sort-of-clevr/default", state).truth
    kept, caption = rooms.scenes.describe(soc.render(example_scene(11)), state)
    assert kept == state and "seed 11" in caption
    dropped, caption = rooms.scenes.describe(other, state)
    assert dropped is None and "no ground truth" in caption
    _, caption = rooms.scenes.describe(gallery_photo(), state)
    assert "not a generated scene" in caption and "Photos" in caption


def test_a_photo_is_marked_out_of_domain(rooms: Rooms) -> None:
    """Defect 3: the scene model's answer on a photo says it means nothing and points to the Photos tab."""
    a = rooms.ask.ask(gallery_photo(), "What shape is the red object?", "sort-of-clevr/default", None)
    assert "Out of domain" in a.markdown and "Photos" in a.markdown and "only for generated scenes" in a.truth
    assert a.view.trace.names[0].startswith("region (")  # no known objects: the most-attended regions are traced


@pytest.mark.parametrize("question", ["hello", "红色物体是什么形状？", "What colour is the biggest object?"])
def test_questions_outside_the_six_kinds_lead_with_the_notice(rooms: Rooms, question: str) -> None:
    """Issue 28: the notice comes first, the answer only greyed as what the model would say anyway, and no truth."""
    s = rooms.scenes.random(7)
    a = rooms.ask.ask(s.image, question, "sort-of-clevr/default", s.state)
    assert a.markdown.startswith("<div class='out-of-domain'") and "## " not in a.markdown
    assert f"What it would say anyway: {max(a.probs, key=a.probs.get)}" in a.markdown
    assert "No true answer" in a.truth and "True answer" not in a.truth
    ok_md = rooms.ask.ask(s.image, scope.KINDS[0][1], "sort-of-clevr/default", s.state).markdown
    assert ok_md.startswith("## ") and "out-of-domain" not in ok_md


def test_a_fusion_without_attention_says_its_maps_are_uniform(rooms: Rooms) -> None:
    s = rooms.scenes.random(7)
    a = rooms.ask.ask(s.image, "What shape is the red object?", "sort-of-clevr/sum-rnn", s.state)
    assert "has no attention" in a.markdown and a.view.uniform and a.maps["layout"]["title"]["text"].startswith("No attention")


@pytest.mark.parametrize("question", ["", "   \x00"])
def test_ask_with_bad_input_is_a_message(rooms: Rooms, question: str) -> None:
    s = rooms.scenes.random(1)
    with pytest.raises(InputError, match="empty"):
        rooms.ask.ask(s.image, question, "sort-of-clevr/default", s.state)
    with pytest.raises(InputError, match="No image"):
        rooms.ask.ask(None, "What shape is the red object?", "sort-of-clevr/default", None)
    with pytest.raises(InputError, match="cannot be loaded"):
        rooms.ask.ask(s.image, "What shape is the red object?", "sort-of-clevr/nothing-here", None)


def test_playback_walks_every_step_then_stops(rooms: Rooms) -> None:
    s = rooms.scenes.random(3)
    view = rooms.ask.ask(s.image, "Is the red object at the top?", "sort-of-clevr/default", s.state).view
    p = toggle_play(False, view)
    assert p.playing and p.step == 0
    seen = [p.step]
    while p.playing:
        p = advance(p.step, view)
        seen.append(p.step)
    assert seen == list(range(len(view.tokens)))
    assert not toggle_play(True, view).playing and toggle_play(True, view).step is None  # pause: the slider stays
    assert advance(0, None) .step is None and not toggle_play(False, None).playing  # nothing to play yet


def test_registry_offers_each_tab_its_own_checkpoints(rooms: Rooms) -> None:
    registry = rooms.registry
    assert [n for _, n in registry.choices("match")] == ["photos/match"]
    assert "photos/match" not in [n for _, n in registry.choices("sort-of-clevr")]
    assert [n for _, n in registry.choices("sort-of-clevr", question_input="audio")] == ["sort-of-clevr/spoken"]
    assert "sort-of-clevr/spoken" not in [n for _, n in registry.choices("sort-of-clevr")]  # typed questions only
    assert registry.get(None).folder == registry.root / "sort-of-clevr" / "default"  # photos/ sorts before sort-of-clevr/


# ----------------------------------------------------------------------------------------- compare


def test_compare_runs_the_default_first_and_says_uniform(rooms: Rooms) -> None:
    """Defect 7: the default is in the table (first), numbers are percentages, uniform maps are labelled. Issue 29:
    each row has the true answer and a right/wrong mark, a sentence says which fusion wins and why, and with no
    scene yet the tab says what to do instead of raising."""
    s = rooms.scenes.random(5)
    question = "Is the green object on the left?"
    c = rooms.compare.compare(s.image, question, s.state)
    truth = soc.true_answer(soc.scene_from_dicts(s.state["objects"]), question)
    assert [r[0] for r in c.rows] == ["default", "sum-rnn", "attention-gru"] and c.image.shape == (75, 75, 3)
    assert [r[1] for r in c.rows] == [FULL_BUDGET, GRID_BUDGET, GRID_BUDGET]  # each row says its training budget
    assert all(r[3] == truth and r[4] == ("✓ right" if r[2] == truth else "✗ wrong") for r in c.rows)
    assert all(str(v).endswith("%") or v == "n/a" for r in c.rows for v in r[5:])
    big = np.kron(c.image, np.ones((4, 4, 1), dtype=np.uint8))
    sum_image, sum_caption = c.gallery[1]
    assert np.array_equal(sum_image[:58, :58], big[:58, :58]) and "no attention" in sum_caption  # unchanged, and said in words
    assert f"true answer: {truth}" in c.summary and "attention right in" in c.summary and "**Why:**" in c.summary
    other = soc.render(example_scene(77))  # a scene the app did not make: answers, no truth
    assert all(r[3] == "unknown" and r[4] == "" for r in rooms.compare.compare(other, question, s.state).rows)
    assert rooms.compare.compare(None, question, None) == Comparison(None, [], [], NO_SCENE)


def test_compare_shows_each_models_faithfulness_from_its_file(rooms: Rooms) -> None:
    """The Compare tab's second table reads metrics.json: a measured model shows its figures, the others say so."""
    root = rooms.registry.root
    metrics = root / "sort-of-clevr" / "attention-gru" / "metrics.json"
    overall = {"follows": 0.912, "ignores": 0.987, "follows_remove": 0.8, "ignores_remove": 0.5, "pointing_attention_named": 1.0,
               "pointing_ig_named": 0.4, "pointing_gradcam_named": 0.1, "pointing_ig_answer": 0.55}
    metrics.write_text(json.dumps({"faithfulness": {"overall": overall}}))
    try:
        text = faithfulness_markdown(root)
        row = next(line for line in text.splitlines() if line.startswith("| attention-gru |"))
        assert "| attention | 91.2% | 98.7% | 80.0% | 50.0% | 100.0% | 40.0% | 10.0% | 55.0% |" in row
        assert "| sum-rnn | " in text and "(not measured)" in text and "**follows**" in text
    finally:
        metrics.unlink()


# ------------------------------------------------------------------------------------------- faithfulness panel


def test_the_panel_needs_a_generated_scene_and_a_typed_question(rooms: Rooms) -> None:
    s = rooms.scenes.random(8)
    q = "What shape is the red object?"
    assert rooms.faith.panel(None, q, None, None).markdown == faith.NO_ANSWER
    uploaded = rooms.faith.panel(soc.render(example_scene(77)), q, None, s.state)  # a scene the app did not make: no truth
    assert uploaded.markdown == faith.NO_SCENE and uploaded.tiles == []
    assert rooms.faith.panel(s.image, q, "sort-of-clevr/spoken", s.state).markdown == faith.TYPED_ONLY
    assert "six kinds" in rooms.faith.panel(s.image, "hello there", None, s.state).markdown
    refused = rooms.faith.intervene(faith.LOOKED, soc.render(example_scene(77)), q, None, s.state)
    assert refused.edit.scene is None and refused.answer is None and refused.verdict == faith.NO_SCENE


def test_the_panel_sets_attention_beside_attributions_and_the_truth(rooms: Rooms) -> None:
    s = rooms.scenes.random(8)
    scene = soc.scene_from_dicts(s.state["objects"])
    q = "What shape is the object closest to the green object?"
    p = rooms.faith.panel(s.image, q, None, s.state)
    assert len(p.tiles) == len(faith.TILES) == 4
    closest = min((o for o in scene.objects if o.colour != "green"), key=lambda o: (o.x - scene.find("green").x) ** 2 + (o.y - scene.find("green").y) ** 2)
    assert f"The truth depends on the green {scene.find('green').shape} and the {closest.colour} {closest.shape}." in p.markdown
    assert np.array_equal(p.tiles[3], overlay(s.image, soc.region_masks([scene.find("green"), closest], 5).astype(float), (5, 5)))
    assert all(img.shape == (300, 300, 3) for img in p.tiles) and "completeness gap" in p.markdown and "Where each weighs most" in p.markdown
    assert "Grad-CAM (this sum model has no attention)" in rooms.faith.panel(s.image, q, "sort-of-clevr/sum-rnn", s.state).markdown


@pytest.mark.parametrize("which", [faith.LOOKED, faith.IGNORED])
def test_each_button_edits_the_scene_and_sets_the_new_answer_beside_the_generators_truth(rooms: Rooms, which: str) -> None:
    """Every time: the scene changes, the new truth is the generator's on the new scene (recomputed here), the answer
    shown is the model's on the new pixels, and the ignored edit leaves the truth as it was."""
    q = "What shape is the object furthest from the red object?"
    for seed in (8, 21, 34):
        s = rooms.scenes.random(seed)
        before = soc.scene_from_dicts(s.state["objects"])
        r = rooms.faith.intervene(which, s.image, q, None, s.state)
        after = soc.scene_from_dicts(r.edit.scene.state["objects"])
        assert after != before and not np.array_equal(r.edit.scene.image, s.image)
        assert np.array_equal(r.edit.scene.image, soc.render(after))
        truth = soc.true_answer(after, q)
        model = rooms.registry.get(None).predict(r.edit.scene.image, q).answer
        assert f"| after | **{model}** | **{truth}** |" in r.verdict and f"True answer: **{truth}**" in r.answer.truth
        if which == faith.IGNORED:
            assert truth == soc.true_answer(before, q) and len(after.objects) == 5
        assert r.panel is not None and len(r.panel.tiles) == 4
    s = rooms.scenes.random(8)
    for _ in range(5):  # down to two objects: then a message, not an error
        r = rooms.faith.intervene(faith.IGNORED, s.image, "What shape is the red object?", None, s.state)
        s = r.edit.scene or s
    assert r.edit.scene is None and "at least two" in r.verdict and len(soc.scene_from_dicts(s.state["objects"]).objects) == 2
    example = soc.render(example_scene(EXAMPLE_SEEDS[0]))  # an example's pixels, no state kept: its own
    assert rooms.faith.intervene(which, example, q, None, None).edit.scene.state["source"].startswith("edited scene (example")


# ------------------------------------------------------------------------------------------- voice


def test_spoken_columns_are_word_ends_or_evenly_spaced() -> None:
    times = [round(0.04 * (i + 1), 2) for i in range(50)]  # 2.0 s in 40 ms steps
    shown, labels = spoken_columns(times, [("the", 0.0, 0.3), ("red", 0.3, 0.61), ("one", 0.61, 2.0)], 0.04)
    assert shown == [7, 15, 49] and labels == ["the (0.32s)", "red (0.64s)", "one (2.00s)"]  # the step that has heard each word
    shown, labels = spoken_columns(times, [], 0.04, most=6)
    assert shown[0] == 0 and shown[-1] == 49 and len(shown) == 6 and labels[-1] == "2.00s"


@speakable
def test_speak_then_ask_by_voice_shows_time_words_and_truth(rooms: Rooms) -> None:
    from mmdemo.audio import time_to_step
    from mmdemo.tasks.sort_of_clevr.speech import Word
    from mmdemo.tasks.sort_of_clevr.spoken import colour_end

    s = rooms.scenes.random(7)
    spoken = rooms.voice.speak(SPOKEN_Q)
    said = spoken.said
    assert said["text"] == SPOKEN_Q and "word times known" in spoken.caption
    assert rooms.voice.describe(spoken.path, said).endswith("(word times known).")
    a = rooms.voice.ask(s.image, spoken.path, "sort-of-clevr/spoken", s.state, said)
    view = a.view
    assert max(a.probs, key=a.probs.get) in a.markdown and "heard" in a.markdown and "steps" in a.markdown
    end = colour_end([Word(*w) for w in said["words"]], "green")
    assert view.colour_step == time_to_step(end, 0.04) == a.slider.value and "ms of speech" in a.slider.label
    assert view.tokens[0] == "0.04s" and len(view.tokens) == len(a.heard["data"][2]["x"])  # one attention column per step
    assert a.heard["layout"]["xaxis3"]["title"]["text"] == "time (s)"
    assert [x["text"] for x in a.heard["layout"]["annotations"]][:3] == ["What", "shape", "is"]  # the word boundaries, marked
    assert "True answer" in a.truth and "When the colour word has been heard" in a.truth
    assert len(a.frame.trace["data"]) == 2 * 6 and a.frame.overlay.shape == (300, 300, 3)
    colour = view.colour_step
    assert f'data-t="{colour}" title="{view.tokens[colour]}"' in a.frame.strip and ">green</span>" in a.frame.strip  # the word, at the step that heard it
    # a typed question afterwards hides the time plot again (nothing stale stays on screen)
    assert rooms.ask.ask(s.image, "What shape is the red object?", "sort-of-clevr/default", s.state).heard is None


@speakable
def test_a_recording_of_unknown_words_gets_no_truth(rooms: Rooms, tmp_path: Path) -> None:
    import soundfile as sf

    from mmdemo.tasks.sort_of_clevr.speech import synthesize

    s = rooms.scenes.random(7)
    voiced = synthesize("What shape is the red object?", voice="en-gb-x-rp")
    path = tmp_path / "mine.wav"
    sf.write(path, voiced.samples * 0.5, voiced.sample_rate)
    assert "not known" in rooms.voice.describe(str(path), None)
    a = rooms.voice.ask(s.image, str(path), "sort-of-clevr/spoken", s.state, None)
    assert "not known here" in a.truth and a.view.colour_step == -1 and a.heard is not None
    with pytest.raises(InputError, match="Record or upload"):
        rooms.voice.ask(s.image, None, "sort-of-clevr/spoken", s.state, None)
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(InputError, match="(?i)silen"):
        rooms.voice.ask(s.image, str(silent), "sort-of-clevr/spoken", s.state, None)


def test_a_hum_gets_no_answer_and_says_so(rooms: Rooms, tmp_path: Path) -> None:
    import soundfile as sf

    s = rooms.scenes.random(7)
    t = np.arange(48000) / 16000
    path = tmp_path / "hum.wav"
    sf.write(path, (0.2 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 16000)
    a = rooms.voice.ask(s.image, str(path), "sort-of-clevr/spoken", s.state, None)
    assert "No question heard" in a.markdown and "hear a question: no answer" in a.markdown and a.probs == {}
    assert "no question was heard" in a.truth and "confidence" not in a.markdown


def test_a_shipped_spoken_example_carries_its_words(rooms: Rooms) -> None:
    example = spoken_examples()[0]
    path = str(SPOKEN_EXAMPLES / example["file"])
    assert example["question"] in rooms.voice.describe(path, None)
    s = rooms.scenes.random(3)
    a = rooms.voice.ask(s.image, path, "sort-of-clevr/spoken", s.state, None)
    assert "True answer" in a.truth and a.view.colour_step >= 0


def test_the_voice_panel_says_how_sure_to_be(rooms: Rooms) -> None:
    assert "No measured figures" in rooms.voice.measured("sort-of-clevr/spoken")
    folder = rooms.registry.root / "sort-of-clevr" / "spoken"
    per_synth = {"espeak": {"nonrelational": 0.97, "relational": 0.9}, "festival": {"nonrelational": 0.93, "relational": 0.85}}
    (folder / "metrics.json").write_text(json.dumps({"nonrelational": 0.9512, "relational": 0.8, "grounding": 0.9, "per_synth": per_synth,
                                                     "heard": {"unsure": 0.1005}, "offtask": {"overall": {"clips": 150, "answered": 0.0067}}}))
    try:
        said = rooms.voice.measured("sort-of-clevr/spoken")
        assert "**95.1%** of non-relational" in said and "**80.0%** of relational" in said and "90.0%" in said
        assert "say 10.1% of those questions again" in said and "Of 150 spoken sentences" in said and "answered 0.7%" in said
        assert "eSpeak NG (304 held-out voices" in said and "97.0% / 90.0%" in said and "Festival (its ked voice" in said and "93.0% / 85.0%" in said
    finally:
        (folder / "metrics.json").unlink()


# ------------------------------------------------------------------------------------------ photos


def test_photo_match_and_search(rooms: Rooms) -> None:
    from mmdemo.photos import gallery

    m = rooms.photos.match(gallery_photo(), "a cat on a blanket", "photos/match")
    assert set(m.probs) == {"match", "mismatch"} and "P(match)" in m.headline
    assert np.array(m.maps["data"][0]["z"], dtype=float).shape == (7, 8 * len(m.view.tokens) - 1)
    assert m.frame.overlay.shape[2] == 3 and f'data-step="{m.slider.value}"' in m.frame.strip and m.frame.trace is None
    assert "zero-shot reference" in m.reference and "cosine" in m.reference and "(uncalibrated)" in m.headline  # defect 8; a test model
    labels = photo_example_files(rooms.registry.root / "ex")[1]
    assert [lab for lab in labels if "mismatch example" in lab] == ["a man with a camera + 'a red car' (a mismatch example)"]
    ranked = rooms.photos.search("a cup of coffee", "photos/match")
    assert len(ranked) == len(gallery())
    scores = [float(caption.rsplit(" ", 1)[1].rstrip("%")) for _, caption in ranked]
    assert scores == sorted(scores, reverse=True)
    assert set(rooms.photos.match(Image.new("RGB", (64, 64)), "a cat", None).probs) == {"match", "mismatch"}  # None: the photo model
    with pytest.raises(InputError, match="empty"):
        rooms.photos.search("  ", "photos/match")


# -------------------------------------------------------------------------------------- model card


def test_the_model_card_says_whether_it_uses_where_it_looks_from_its_file() -> None:
    f = {"overall": {"follows": 0.983, "ignores": 0.98}, "per_subtype": {"count": {"count_shift_remove": {"+0": 10, "+1": 30}}}}
    text = faithful_sentence({"faithfulness": f})
    assert "follows the new truth 98.3%" in text and "stays 98.0%" in text and "by one in 75.0% of cases" in text
    f["per_subtype"]["count"]["count_shift_remove"] = {"+0": 30, "+1": 10}  # no shortcut in the file: no claim of one
    assert "Except for counting" not in faithful_sentence({"faithfulness": f})
    assert faithful_sentence({}) == "" and faithful_sentence(None) == ""


def test_the_model_card_reads_its_figures_from_files(tmp_path: Path) -> None:
    per = {"closest: Which shape does the nearest neighbour of the {c} {o} have?": 0.9077, "count: How many {c}?": 1.0}
    sentence = heldout_sentence({"heldout_wording": {"nonrelational": 0.98, "relational": 0.95, "overall": 0.97, "per_wording": per}})
    assert "each of 2 held-out ones gets 90% or more" in sentence and '"closest" question (90.8%)' in sentence
    assert heldout_sentence({"overall": 0.9}) == "" and heldout_sentence(None) == ""  # no measure, no sentence
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps({"test": {"accuracy": 0.844}}))
    assert photo_accuracy_clause(calibration) == " (right 84.4% of the time on photos held out from every choice)"
    assert photo_accuracy_clause(tmp_path / "missing.json") == ""
    folder = tmp_path / "default"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"heldout_wording": {"per_wording": {"shape: {c}?": 0.5}}}))
    card = model_card_text(folder, calibration)
    assert "Words used here" in card and "each of 1 held-out ones gets 50% or more" in card and "84.4%" in card
    assert "held-out ones" not in model_card_text(tmp_path / "nothing", calibration)
