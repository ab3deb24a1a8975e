"""mmdemo's Gradio app: layout and wiring only; the work behind each tab is mmdemo.demo (plain values, no gradio).

Importing this module changes nothing (no environment variable, no model). `python app.py` (the entry point below)
sets HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE, HF_HUB_DISABLE_TELEMETRY and GRADIO_ANALYTICS_ENABLED=False unless set,
then loads, warms and serves; the Blocks send no analytics however they are built. Element ids: docs/APP.md.
"""

from __future__ import annotations

import html
import os

if __name__ == "__main__":  # python app.py: before gradio and huggingface_hub read them at import
    for _name, _value in {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}.items():
        os.environ.setdefault(_name, _value)

from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from mmdemo.components import SafeImage, SeedNumber, SpecPlot, shown, slider_update
from mmdemo.demo import Rooms, faith, photos
from mmdemo.demo.ask import EMPTY_ANSWER, KINDS_MARKDOWN, TRACE_CAPTION, Answer
from mmdemo.demo.compare import HEADERS, INTRO, NO_SCENE, faithfulness_markdown
from mmdemo.demo.model_card import benchmark_markdown, model_card_text, paper_markdown
from mmdemo.demo.page import CSS, SHOW_ANSWER_JS, SHOW_PHOTO_ANSWER_JS
from mmdemo.demo.scenes import EXAMPLE_QUESTIONS, NO_IMAGE, example_files
from mmdemo.demo.views import Frame, advance, show_step, toggle_play
from mmdemo.demo.voice import RECORD, SPOKEN_EXAMPLES, spoken_examples
from mmdemo.inference import Predictor
from mmdemo.limits import MAX_FILE_BYTES, MAX_SEED, MAX_TEXT_CHARS
from mmdemo.malloc import limit_malloc_arenas
from mmdemo.plots import HOP_NAMES
from mmdemo.registry import Registry
from mmdemo.serving import Drain, GuardMiddleware, pending_events, serve_until_stopped
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import speech

PLAY_SECONDS = 0.8  # one step per tick while playing


def build_ask_tab(rooms: Rooms, choices: list, default_choice: str | None, example_dir: Path, spoken_choices: list) -> dict:
    """The Ask tab: image + question (typed or spoken) in; answer, step views with playback, truth, maps, time plot out."""
    scene, said, view, playing = gr.State(None), gr.State(None), gr.State(None), gr.State(False)  # said: the recording's words
    timer = gr.Timer(PLAY_SECONDS, active=False)
    with gr.Row():
        with gr.Column(scale=1):
            image = SafeImage(type="filepath", image_mode=None, format="png", label="Image", height=320, elem_id="image", render=False)
            question = gr.Textbox(label="Question", value=EXAMPLE_QUESTIONS[2], max_length=MAX_TEXT_CHARS, elem_id="question", render=False)
            examples = gr.Examples(example_files(example_dir), inputs=[image, question], elem_id="ask-examples", examples_per_page=6,
                                   label="Examples: click one to see the answer (generated scenes, so the truth is known)")
            image.render()
            with gr.Row():
                seed = SeedNumber(value=-1, precision=0, label="seed (-1: a new scene every click)", minimum=-1, maximum=MAX_SEED, elem_id="seed")
                new_scene = gr.Button("New random scene", elem_id="new-scene")
            scene_info = gr.Markdown(NO_IMAGE, elem_id="scene-info")
            question.render()
            ask = gr.Button("Ask", variant="primary", elem_id="ask")
            gr.Markdown(KINDS_MARKDOWN, elem_id="kinds")
            checkpoint = gr.Dropdown(choices=choices, value=default_choice, label="Model (measured accuracy)", elem_id="checkpoint")
            with gr.Accordion("Ask by voice: record, upload, or hear the typed question", open=False, elem_id="voice"):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Spoken question", elem_id="audio")
                speakable, why = speech.available()
                with gr.Row():
                    speak = gr.Button("Speak this question", elem_id="speak", visible=speakable)
                    ask_audio = gr.Button("Ask by voice", variant="primary", elem_id="ask-audio")
                recording_info = gr.Markdown(RECORD if speakable else f"**Speak this question** is off here: {html.escape(why)}",
                                             elem_id="recording-info")
                first_spoken = spoken_choices[0][1] if spoken_choices else None
                spoken_checkpoint = gr.Dropdown(choices=spoken_choices, value=first_spoken,
                                                label="Spoken-question checkpoint (measured accuracy)", elem_id="spoken-checkpoint")
                spoken_measured = gr.Markdown(rooms.voice.measured(first_spoken), elem_id="spoken-measured")
                recordings = spoken_examples()
                gr.Examples([[str(SPOKEN_EXAMPLES / e["file"])] for e in recordings], inputs=[audio],
                            example_labels=[e["question"] for e in recordings], label="Spoken examples (voices the model never heard in training)")
        with gr.Column(scale=1):
            answer = gr.Markdown(EMPTY_ANSWER, elem_id="answer")
            overlay_img = gr.Image(show_label=False, interactive=False, format="png", height=320, elem_id="overlay", buttons=["download"])
            tokens = gr.HTML(elem_id="tokens")
            with gr.Row():
                play = gr.Button("▶ Play", elem_id="play", scale=0, min_width=110)
                step = gr.Slider(0, 1, value=0, step=1, label="RNN step (token)", elem_id="step", scale=4)
            hop = gr.Radio([(name, k) for k, name in enumerate(HOP_NAMES)], value=0, label="overlay shows", elem_id="hop")
            truth = gr.Markdown(elem_id="truth")
            probs = gr.Label(num_top_classes=4, label="Probabilities of the ten answers (shapes, yes / no, counts)", elem_id="probs")
    heard = SpecPlot(label="The spoken question against time", visible=False, elem_id="spoken-plot")
    gr.Markdown(TRACE_CAPTION, elem_id="trace-caption")
    trace = SpecPlot(label="Object trace", elem_id="trace")
    heatmap = SpecPlot(label="Both hops, every step (scrolls sideways on a phone)", elem_id="heatmap")
    with gr.Accordion(faith.TITLE, open=True, elem_id="faith"):
        gr.Markdown(faith.INTRO)
        with gr.Row(elem_id="faith-tiles"):  # attention, Integrated Gradients, Grad-CAM, the truth's objects; 2 x 2 on a phone
            faith_tiles = [gr.Image(label=name, interactive=False, format="png", height=240, min_width=160, buttons=["download"])
                           for name in faith.TILES]
        faith_note = gr.Markdown(faith.NO_ANSWER, elem_id="faith-note")
        with gr.Row():
            remove_looked = gr.Button("Remove what it looked at", elem_id="remove-looked")
            remove_ignored = gr.Button("Remove something it ignored", elem_id="remove-ignored")
        faith_verdict = gr.Markdown(elem_id="faith-verdict")
    with gr.Accordion("Change the scene (counterfactuals)", open=False):
        with gr.Row():
            edit_colour = gr.Dropdown(list(soc.COLOURS), value="red", label="object", elem_id="edit-colour")
            edit_action = gr.Radio(list(soc.EDIT_ACTIONS), value="move", label="action", elem_id="edit-action")
            edit_other = gr.Dropdown(list(soc.COLOURS), value="blue", label="swap colour with", elem_id="edit-other")
        with gr.Row():
            edit_x = gr.Slider(soc.HALF_SIDE, soc.SIZE - soc.HALF_SIDE - 1, value=37, step=1, label="new x", elem_id="edit-x")
            edit_y = gr.Slider(soc.HALF_SIDE, soc.SIZE - soc.HALF_SIDE - 1, value=37, step=1, label="new y", elem_id="edit-y")
        apply_edit = gr.Button("Apply and ask again", elem_id="apply-edit")
        edit_message = gr.Markdown(elem_id="edit-message")

    def answered(a: Answer) -> dict:
        """An answer on screen: the step views open at its first step, hop 1; the time plot only for a spoken question."""
        return {answer: a.markdown, probs: a.probs, heatmap: a.maps, overlay_img: a.frame.overlay, step: slider_update(a.slider),
                tokens: a.frame.strip, trace: a.frame.trace, truth: a.truth, view: a.view, hop: 0,
                heard: gr.update(visible=False) if a.heard is None else gr.update(value=a.heard, visible=True)}

    def at_step(f: Frame | None) -> dict:
        return gr.skip() if f is None else {overlay_img: f.overlay, tokens: f.strip, trace: f.trace}

    def new(seed_value: float | None) -> dict:
        s = rooms.scenes.random(seed_value)
        return {image: s.image, scene: s.state, scene_info: s.caption}

    def described(img: Any, state: dict | None) -> dict:
        kept, caption = rooms.scenes.describe(img, state)
        return {scene: kept, scene_info: caption}

    def spoken(q: str) -> dict:
        s = rooms.voice.speak(q)
        return {audio: s.path, said: s.said, recording_info: s.caption}

    def edited(*args: Any) -> dict:
        done = rooms.ask.edit_and_ask(*args)
        out = {edit_message: done.edit.message}
        if done.edit.scene is not None:  # else the image stays
            out |= {image: done.edit.scene.image, scene: done.edit.scene.state, scene_info: done.edit.scene.caption}
        return out | (answered(done.answer) if done.answer is not None else {})

    def toggled(now: bool, v: Any) -> dict:
        p = toggle_play(now, v)
        out = {timer: gr.Timer(active=p.playing), play: gr.Button(value="⏸ Pause" if p.playing else "▶ Play"), playing: p.playing}
        return out | ({step: p.step} if p.step is not None else {})

    def ticked(s: float, v: Any) -> dict:
        p = advance(s, v)
        out = {playing: p.playing} | ({step: p.step} if p.step is not None else {})
        return out if p.playing else out | {timer: gr.Timer(active=False), play: gr.Button(value="▶ Play")}

    def explained(p: faith.Panel, verdict: str = "") -> dict:
        tiles = p.tiles or [None] * len(faith_tiles)
        return {faith_note: p.markdown, faith_verdict: verdict} | dict(zip(faith_tiles, tiles))

    def intervened(which: str) -> Any:
        def run(img: Any, q: str, ck: str | None, st: dict | None) -> dict:
            r = rooms.faith.intervene(which, img, q, ck, st)
            out = {faith_verdict: r.verdict} | (explained(r.panel, r.verdict) if r.panel is not None else {})
            if r.edit.scene is not None:
                out |= {image: r.edit.scene.image, scene: r.edit.scene.state, scene_info: r.edit.scene.caption}
            return out | (answered(r.answer) if r.answer is not None else {})
        return shown(run)

    ask_fn = shown(lambda img, q, ck, st: answered(rooms.ask.ask(img, q, ck, st)))
    outputs = [answer, probs, heatmap, overlay_img, step, tokens, trace, truth, view, hop, heard]
    asked = [image, question, checkpoint, scene]
    hidden = {"api_name": False, "show_progress": "hidden"}
    panel_fn, faith_outputs = shown(lambda *a: explained(rooms.faith.panel(*a))), [*faith_tiles, faith_note, faith_verdict]
    examples.load_input_event.then(ask_fn, asked, outputs, api_name=False).success(None, js=SHOW_ANSWER_JS).then(
        panel_fn, asked, faith_outputs, api_name=False)  # an example answers
    new_scene.click(shown(new), [seed], [image, scene, scene_info], api_name="random_scene").then(
        ask_fn, asked, outputs, api_name=False).success(None, js=SHOW_ANSWER_JS).then(panel_fn, asked, faith_outputs, api_name=False)
    image.change(described, [image, scene], [scene, scene_info], **hidden)
    image.upload(lambda: explained(faith.Panel(faith.NO_ANSWER, [])), None, faith_outputs, **hidden)  # a new upload: no stale panel
    ask.click(ask_fn, asked, outputs, api_name="predict").success(None, js=SHOW_ANSWER_JS).then(panel_fn, asked, faith_outputs, api_name="explain")
    question.submit(ask_fn, asked, outputs, api_name=False).success(None, js=SHOW_ANSWER_JS).then(panel_fn, asked, faith_outputs, api_name=False)
    speak.click(shown(spoken), [question], [audio, said, recording_info], api_name="speak")
    spoken_checkpoint.change(rooms.voice.measured, [spoken_checkpoint], spoken_measured, **hidden)
    audio.change(rooms.voice.describe, [audio, said], recording_info, **hidden)
    ask_audio.click(shown(lambda img, rec, ck, st, sd: answered(rooms.voice.ask(img, rec, ck, st, sd))),
                    [image, audio, spoken_checkpoint, scene, said], outputs, api_name="predict_audio").success(None, js=SHOW_ANSWER_JS).then(
        lambda: explained(faith.Panel(faith.TYPED_ONLY, [])), None, faith_outputs, api_name=False)
    for control in (step, hop):
        control.change(lambda v, s, h: at_step(show_step(v, s, h)), [view, step, hop], [overlay_img, tokens, trace], **hidden)
    play.click(toggled, [playing, view], [timer, play, step, playing], **hidden)
    timer.tick(ticked, [step, view], [step, timer, play, playing], **hidden)
    apply_edit.click(shown(edited), [scene, edit_colour, edit_action, edit_x, edit_y, edit_other, question, checkpoint],
                     [image, scene, scene_info, edit_message, *outputs], api_name="edit_scene").then(panel_fn, asked, faith_outputs, api_name=False)
    for button, which in ((remove_looked, faith.LOOKED), (remove_ignored, faith.IGNORED)):
        button.click(intervened(which), asked, [image, scene, scene_info, *faith_outputs, *outputs], api_name=f"remove_{which}")
    return {"image": image, "question": question, "checkpoint": checkpoint, "spoken_checkpoint": spoken_checkpoint, "scene": scene}


def build_photos_tab(rooms: Rooms, photo_choices: list, photo_default: str | None, example_dir: Path) -> None:
    """Photos: does a sentence describe a photo? The answer beside how sure to be, per-word attention, search."""
    view = gr.State(None)
    gr.Markdown(photos.INTRO)
    with gr.Row():
        with gr.Column(scale=1):
            photo = SafeImage(type="filepath", image_mode=None, label="Photo", height=300, elem_id="photo", render=False)
            sentence = gr.Textbox(label="Sentence", value="a cat", max_length=MAX_TEXT_CHARS, elem_id="sentence", render=False)
            examples, labels = photos.example_files(example_dir)
            photo_examples = gr.Examples(examples, inputs=[photo, sentence], example_labels=labels, elem_id="photo-examples",
                                         label="Example photos: click one to see the answer (the last pairs a photo with a sentence that does not describe it)")
            photo.render()
            sentence.render()
            photo_checkpoint = gr.Dropdown(choices=photo_choices, value=photo_default, label="Model", elem_id="photo-checkpoint")
            match_btn = gr.Button("Match", variant="primary", elem_id="match")
        with gr.Column(scale=1):
            photo_answer = gr.Markdown(photos.START, elem_id="photo-answer")
            photo_reference = gr.Markdown(elem_id="photo-reference")
            photo_overlay = gr.Image(show_label=False, interactive=False, format="png", height=300, elem_id="photo-overlay", buttons=["download"])
            photo_tokens = gr.HTML(elem_id="photo-tokens")
            photo_step = gr.Slider(0, 1, value=0, step=1, label="RNN step (word)", elem_id="photo-step")
            photo_probs = gr.Label(num_top_classes=2, label="Probabilities", elem_id="photo-probs")
    photo_heatmap = SpecPlot(label="Where each word looked (scrolls sideways on a phone)", elem_id="photo-heatmap")
    with gr.Accordion("Search by sentence: rank the example photos", open=True):
        query = gr.Textbox(label="Sentence", value="a cup of coffee", max_length=MAX_TEXT_CHARS, elem_id="query")
        search_btn = gr.Button("Search", elem_id="search")
        ranked = gr.Gallery(label="Example photos, best match first", columns=4, height="auto", elem_id="ranked")

    @shown
    def matched(img: Any, text: str, ck: str | None) -> dict:
        m = rooms.photos.match(img, text, ck)
        return {photo_answer: m.headline, photo_probs: m.probs, photo_heatmap: m.maps, photo_overlay: m.frame.overlay,
                photo_step: slider_update(m.slider), photo_tokens: m.frame.strip, photo_reference: m.reference, view: m.view}

    def at_step(v: Any, s: float) -> dict:
        f = show_step(v, s, 0)
        return gr.skip() if f is None else {photo_overlay: f.overlay, photo_tokens: f.strip}

    photo_outputs = [photo_answer, photo_probs, photo_heatmap, photo_overlay, photo_step, photo_tokens, photo_reference, view]
    inputs = [photo, sentence, photo_checkpoint]
    match_btn.click(matched, inputs, photo_outputs, api_name="photo_match").success(None, js=SHOW_PHOTO_ANSWER_JS)
    photo_examples.load_input_event.then(matched, inputs, photo_outputs, api_name=False).success(None, js=SHOW_PHOTO_ANSWER_JS)  # an example answers
    sentence.submit(matched, inputs, photo_outputs, api_name=False)
    photo_step.change(at_step, [view, photo_step], [photo_overlay, photo_tokens], api_name=False, show_progress="hidden")
    search_btn.click(shown(rooms.photos.search), [query, photo_checkpoint], ranked, api_name="search")


def build_compare_tab(rooms: Rooms, ask: dict) -> None:
    """Compare: the Ask tab's image and question through the default and every ablation checkpoint."""
    gr.Markdown(INTRO)
    compare_btn = gr.Button("Compare all models", variant="primary", elem_id="compare")
    with gr.Row():
        compared = gr.Image(label="The image compared", interactive=False, format="png", height=240, scale=1, min_width=240, elem_id="compare-image")
        with gr.Column(scale=3, min_width=320):  # a phone: below the image, not squeezed beside it
            compare_note = gr.Markdown(NO_SCENE, elem_id="compare-summary")
    compare_table = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, max_height=2000, elem_id="compare-table")  # every row shown
    compare_gallery = gr.Gallery(label="Where hop 1 looked at the colour word, each model", columns=4, height="auto", format="png",
                                 object_fit="contain", elem_id="compare-gallery")
    gr.Markdown(faithfulness_markdown(rooms.registry.root), elem_id="faith-table")
    gr.Markdown(paper_markdown(), elem_id="paper-table")

    @shown
    def compare(img: Any, q: str, state: dict | None) -> dict:
        c = rooms.compare.compare(img, q, state)
        return {compared: c.image, compare_table: c.rows, compare_gallery: c.gallery, compare_note: c.summary}

    compare_btn.click(compare, [ask["image"], ask["question"], ask["scene"]], [compared, compare_table, compare_gallery, compare_note],
                      api_name="compare")


def build_demo(predictor: Predictor | None = None, registry: Registry | None = None, example_dir: Path | None = None, warm: bool = False) -> gr.Blocks:
    """The whole UI over a registry (the given predictor served first); warm: run each model shown first once."""
    registry = registry or Registry(preload=predictor)
    rooms = Rooms.create(registry, Path(os.environ.get("MMDEMO_AUDIO", "/tmp/mmdemo-audio")))
    choices = registry.choices("sort-of-clevr")
    default_choice = registry.name(predictor.folder) if predictor is not None else (choices[0][1] if choices else None)
    spoken_choices = registry.choices("sort-of-clevr", question_input="audio")
    photo_choices = registry.choices("match")
    photo_default = photo_choices[0][1] if photo_choices else None
    example_dir = example_dir or Path(os.environ.get("MMDEMO_EXAMPLES", "/tmp/mmdemo-examples"))
    if warm:
        rooms.warm(default_choice, photo_default, spoken_choices[0][1] if spoken_choices else None)

    with gr.Blocks(title="mmdemo: where does the RNN look?", analytics_enabled=False) as demo:
        gr.Markdown("# mmdemo: where does the RNN look?\nAn image and a question in; the answer and, for every step of the RNN's reading, where in the image it looked.")
        with gr.Tab("Ask"):
            ask = build_ask_tab(rooms, choices, default_choice, example_dir, spoken_choices)
        with gr.Tab("Photos"):
            build_photos_tab(rooms, photo_choices, photo_default, example_dir)
        with gr.Tab("Compare"):
            build_compare_tab(rooms, ask)
        with gr.Tab("Model card"):
            gr.Markdown(model_card_text(), elem_id="model-card-text")
            gr.Markdown(benchmark_markdown(), elem_id="model-card")
        # API-only endpoint: the prediction as JSON, without rendering maps or overlays.
        answer_json = gr.JSON(visible=False)
        answer_btn = gr.Button(visible=False)
        answer_btn.click(shown(rooms.ask.answer_json), [ask["image"], ask["question"], ask["checkpoint"]], answer_json, api_name="answer")
    return demo


def launch_kwargs(drain: Drain | None = None) -> dict[str, Any]:
    """Local (GRADIO_SERVER_NAME/PORT override), no share link; bodies capped and, with a drain, counted for SIGTERM."""
    middleware = [Middleware(GuardMiddleware, drain=drain or Drain())]
    return {"share": False, "max_file_size": MAX_FILE_BYTES, "show_error": False, "css": CSS, "app_kwargs": {"middleware": middleware}}


def main() -> int:
    """`python app.py`: load, warm, serve until SIGTERM (the environment was set above, before gradio's import)."""
    limit_malloc_arenas()  # before any worker thread: memory stays flat under a long run of requests
    demo = build_demo(Predictor.load(), warm=True)
    # Requests run in threads sharing one read-only model; 4 at once keeps 2-core latency sane.
    demo.queue(default_concurrency_limit=4, max_size=64, api_open=False)
    drain = Drain()
    demo.launch(**launch_kwargs(drain), prevent_thread_lock=True)
    # SIGTERM: no new requests, the accepted ones finish (bounded), one log line, exit 0.
    return serve_until_stopped(drain, lambda: pending_events(demo), lambda: demo.close(verbose=False))


if __name__ == "__main__":
    raise SystemExit(main())
