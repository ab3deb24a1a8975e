"""mmdemo's Gradio app: ask, watch where the RNN looks at every step, change the scene, compare fusions.

Gradio only: every number comes from mmdemo (Predictor, generator, reading, plots). Importing this module has
no side effects; `python app.py` loads the default checkpoint, warms every model the app shows first, and
launches. Element ids (for UI automation) are listed in docs/APP.md.
"""

from __future__ import annotations

import hashlib
import html
import json
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import soundfile as sf
from gradio.components.plot import PlotData
from PIL import Image
from starlette.middleware import Middleware

from mmdemo import plots
from mmdemo.audio import decode, time_to_step
from mmdemo.checkpoint import ROOT, CheckpointError, read_metrics
from mmdemo.inference import IMAGE_NOTICE, InputError, Prediction, Predictor, load_image, prepare_image
from mmdemo.limits import MAX_FILE_BYTES, MAX_SEED
from mmdemo.malloc import limit_malloc_arenas
from mmdemo.plots import HOP_NAMES, hop_maps, hop_name, is_uniform, object_trace, overlay, token_strip
from mmdemo.registry import Registry
from mmdemo.results import FULL_BUDGET, compared_models, paper_table, pct, results_table
from mmdemo.serving import Drain, GuardMiddleware, serve_until_stopped
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr import scope, speech
from mmdemo.tasks.sort_of_clevr.reading import colour_token_step, object_mass, question_roles, top_regions
from mmdemo.tasks.sort_of_clevr.spoken import colour_end

MAX_UPLOAD = MAX_FILE_BYTES  # bytes per uploaded file (mmdemo.limits; README "Limits")
SEED_RULE = f"The seed must be a whole number from 0 to {MAX_SEED}, or -1 for a random scene."
PLAY_SECONDS = 0.8  # one step per tick while playing
SPOKEN_EXAMPLES = Path(__file__).resolve().parent / "examples" / "spoken"  # six questions in held-out voices (+ examples.json)
EXAMPLE_SEEDS = (3, 14, 27, 42, 58, 99)
EXAMPLE_QUESTIONS = (
    "What shape is the red object?",
    "Is the blue object on the left side of the image?",
    "What shape is the object closest to the green object?",
    "How many objects have the same shape as the orange object?",
    "Is the gray object in the top half of the image?",
    "What shape is the object furthest from the yellow object?",
)
CSS = """
#image img, #overlay img, #compare-image img { image-rendering: pixelated; }
#image img, #compare-image img { height: 100%; width: auto; max-width: 100%; object-fit: contain; border: 1px solid #999; box-sizing: border-box; }
#overlay img { border: 1px solid #999; box-sizing: border-box; }
#compare-gallery img { image-rendering: pixelated; }
#compare-gallery .grid-wrap { max-height: none !important; height: auto !important; overflow-y: visible !important; }
#compare-table th, #compare-table th *, #model-card th, #paper-table th { word-break: normal !important; overflow-wrap: normal !important; hyphens: manual !important; }
#model-card table, #paper-table table { display: block; overflow-x: auto; }  /* wide tables scroll sideways, never break words */
.out-of-domain { border-left: 4px solid #c2410c; background: #fff7ed; color: #431407; padding: 8px 12px; font-size: 1.05em; }
.anyway { color: #888; }
.gradio-container:has(#answer .out-of-domain) #probs { opacity: 0.4; }  /* out of domain: no confident headline */
@media (max-width: 700px) {  /* a phone: the step maps keep readable cells and scroll sideways */
  #heatmap, #photo-heatmap { overflow-x: auto; }
  #heatmap .js-plotly-plot, #photo-heatmap .js-plotly-plot { min-width: 760px; }
}
.gradio-container:has(#answer .out-of-domain) #probs::before { content: "What it would say anyway (means nothing here)"; padding: 4px 8px; }
"""
# On a phone the results column sits below the inputs: after an answer, bring it (and the overlay) into view.
SHOW_ANSWER_JS = """() => { const a = document.getElementById('answer');
  if (a && window.innerWidth < 700) window.scrollTo({top: a.getBoundingClientRect().top + window.scrollY - 8}); }"""
SHOW_PHOTO_ANSWER_JS = SHOW_ANSWER_JS.replace("'answer'", "'photo-answer'")


class SafeImage(gr.Image):
    """gr.Image whose upload step turns unreadable files into a clear message instead of a traceback."""

    is_template = True  # render with gradio's own Image frontend, not as a custom component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise gr.Error(f"Not a readable image ({type(e).__name__}).", print_exception=False) from None


class SpecPlot(gr.Plot):
    """gr.Plot that takes a plotly figure spec (a dict from mmdemo.plots) and sends it as JSON as it is.

    gr.Plot would want a plotly Figure, and building one (validation, deep copies) costs more per request
    than the model does."""

    is_template = True  # gradio's own Plot frontend

    def postprocess(self, value: Any) -> PlotData | None:
        if isinstance(value, dict):
            return PlotData(type="plotly", plot=json.dumps(value))
        return super().postprocess(value)


class SeedNumber(gr.Number):
    """gr.Number for the scene seed: a value that is not a number (NaN, text, a list) is a clear message."""

    is_template = True

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (TypeError, ValueError, OverflowError):
            raise gr.Error(SEED_RULE, print_exception=False) from None


# gr.Error renders its message as HTML: keep the characters that are markup out of it (escaping them would show
# clients a literal "&#x27;"), so every client reads the same plain text.
_PLAIN = str.maketrans({"<": "‹", ">": "›", "&": "+"})


def _error(message: str) -> gr.Error:
    return gr.Error(message.translate(_PLAIN), print_exception=False)


def pixel_key(pixels: np.ndarray) -> str:
    """Identity of an image by its exact pixels: a scene's truth applies to these pixels and no others."""
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    return hashlib.sha1(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def file_key(path: str | Path) -> str:
    """A recording's identity: its bytes (gradio copies files into its cache; the bytes stay the same)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def said_state(text: str, words: list, source: str, key: str = "") -> dict:
    """What is known about a recording that was made from a text: the text and each word's (text, start, end) in seconds."""
    return {"key": key, "text": text, "words": [tuple(w) for w in words], "source": source}


def spoken_examples() -> list[dict]:
    """examples/spoken/examples.json: each shipped recording's file, question, voice and word boundaries."""
    index = SPOKEN_EXAMPLES / "examples.json"
    return json.loads(index.read_text()) if index.is_file() else []


def spoken_columns(step_times: list[float], words: list, step_seconds: float, most: int = 12) -> tuple[list[int], list[str]]:
    """Which steps the small multiples show for a spoken question, and their labels: the step at the end of
    each word heard (labelled with the word) when the words are known, else `most` evenly spaced steps (the time)."""
    if not step_times:
        return [0], ["0.00s"]
    if words:
        ends = [(t, w) for t, w in enumerate(strip_labels(step_times, words, step_seconds)) if w]
        return [t for t, _ in ends], [f"{w} ({step_times[t]:.2f}s)" for t, w in ends]
    last = len(step_times) - 1
    shown = sorted({int(round(i)) for i in np.linspace(0, last, min(most, last + 1))})
    return shown, [f"{step_times[t]:.2f}s" for t in shown]


def strip_labels(step_times: list[float], words: list, step_seconds: float, every_seconds: float = 0.2) -> list[str]:
    """What each 40 ms chip of a spoken question's strip shows: each word at the step that has heard it, when
    the words are known; else the time every 0.2 s. The other chips are narrow and unlabelled."""
    labels = [""] * len(step_times)
    if words:
        for text, _, end in words:
            t = min(time_to_step(end, step_seconds), len(labels) - 1)
            labels[t] = labels[t] or str(text)
        return labels
    every = max(1, round(every_seconds / step_seconds))
    return [f"{end:.1f}s" if (t + 1) % every == 0 else "" for t, end in enumerate(step_times)]


def example_scene(seed: int) -> soc.Scene:
    return soc.random_scene(soc.scene_rng("val", seed, 0))


def scene_state(scene: soc.Scene, source: str) -> dict:
    """What the app remembers about a generated scene: its objects, the key of its pixels and where it came from."""
    return {"objects": scene.to_dict(), "key": pixel_key(soc.render(scene)), "source": source}


# ------------------------------------------------------------------------------------------ handlers
# Plain functions of plain values (tested without a server); the Blocks below only wire them up.


class Handlers:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.examples = {pixel_key(soc.render(example_scene(s))): scene_state(example_scene(s), f"example scene, seed {s}") for s in EXAMPLE_SEEDS}
        self.spoken_examples = {file_key(SPOKEN_EXAMPLES / e["file"]): said_state(e["question"], e["words"], f"example recording, voice {e['voice']}")
                                for e in spoken_examples()}
        self.audio_dir = Path(os.environ.get("MMDEMO_AUDIO", "/tmp/mmdemo-audio"))  # questions voiced by "Speak this question"
        self._zero_shot: dict[str, Any] = {}

    def predictor(self, checkpoint: str | None) -> Predictor:
        try:
            return self.registry.get(checkpoint or None)
        except CheckpointError as e:
            raise _error(f"That checkpoint cannot be loaded: {e}") from None

    # ------------------------------------------------------------------------------ scenes and truth

    def random_scene(self, seed: float | None) -> tuple[np.ndarray, dict, str]:
        """A new generated scene: image, its state (ground truth) and a caption with the seed used.

        seed < 0 (or empty) draws a new seed every call; the seed box is left as it is."""
        usable = seed is None or seed == -1 or (isinstance(seed, (int, float)) and 0 <= seed <= MAX_SEED and float(seed).is_integer())
        if not usable:  # a seed past 64 bits cannot even be sent back: the client would wait forever
            raise _error(SEED_RULE)
        seed = int(np.random.default_rng().integers(0, 1_000_000)) if seed is None or seed < 0 else int(seed)
        scene = example_scene(seed)
        return soc.render(scene), scene_state(scene, f"generated scene, seed {seed}"), self.scene_caption(f"generated scene, seed {seed}")

    @staticmethod
    def scene_caption(source: str) -> str:
        return f"**{source[0].upper() + source[1:]}** (ground truth known)."

    def known_scene(self, pixels: np.ndarray, state: dict | None) -> dict | None:
        """The scene state whose pixels these are: the current generated/edited scene, or an example; else None."""
        key = pixel_key(pixels)
        if state and state.get("key") == key:
            return state
        return self.examples.get(key)

    def describe_image(self, image: Any, state: dict | None) -> tuple[dict | None, str]:
        """On every change of image: keep the truth only if it belongs to the new pixels, and say what the image is."""
        if image is None:
            return None, "Upload an image, pick an example, or generate a scene."
        try:
            pixels = prepare_image(load_image(image), soc.SIZE)
        except InputError as e:
            return None, html.escape(str(e))
        known = self.known_scene(pixels, state)
        if known is not None:
            return known, self.scene_caption(known["source"])
        if not soc.looks_like_scene(pixels):
            return None, "Uploaded image, **not a generated scene** (the scene models only know white canvases with six colours): answers mean nothing; for photos use the **Photos** tab."
        return None, "Uploaded image (looks like a generated scene; no ground truth)."

    # ------------------------------------------------------------------------------------------ ask

    def answered(self, checkpoint: str | None, image: Any, question: Any, predictor: Predictor | None = None) -> tuple[Predictor, np.ndarray, Prediction]:
        """The checkpoint's predictor (or the one given, already looked up), the exact pixels it sees (decoded once:
        shown and asked alike) and its answer; input a person can fix is a message."""
        predictor = predictor or self.predictor(checkpoint)
        try:
            pixels = predictor.prepare(image)
            return predictor, pixels, predictor.predict(pixels, question)
        except InputError as e:
            raise _error(str(e)) from None

    def ask(self, image: Any, question: str, checkpoint: str | None, state: dict | None):
        """Answer, probabilities, step maps, overlay, step slider, token strip, object trace, truth, view state, hop, time plot."""
        predictor, pixels, pred = self.answered(checkpoint, image, question)
        scene = self.scene_of(pixels, predictor, state)
        view = self.scene_view(pred, pixels, predictor, scene, question)
        title = "Where each step looked (5 x 5 maps)"
        maps = hop_maps(view["hops"], pred.tokens, tuple(pred.grid), view["colour_step"], self.maps_title(view, title))
        return self.results(pred, predictor, pixels, scene, question, view, maps, "RNN step (token)", gr.update(visible=False))

    def ask_audio(self, image: Any, recording: str | None, checkpoint: str | None, state: dict | None, said: dict | None):
        """ask for a spoken question (a sound file's path): the same outputs, steps in time, and the time plot."""
        if not recording:
            raise _error("Record or upload a spoken question first, or type one and click **Speak this question**.")
        if not checkpoint:
            raise _error("No spoken-question checkpoint was found under checkpoints/ (train one: docs/SPOKEN.md).")
        predictor = self.predictor(checkpoint)
        try:  # decoded once: the model hears it and the time plot shows it
            sound = decode(recording, predictor.cfg.max_audio_seconds, predictor.cfg.sample_rate)
        except InputError as e:
            raise _error(str(e)) from None
        predictor, pixels, pred = self.answered(checkpoint, image, sound, predictor)
        said = self.known_recording(recording, said)
        text, words = (said["text"], said["words"]) if said else ("", [])
        colour_step = -1
        parsed = soc.parse_question(text) if text else None
        if parsed is not None:
            end = colour_end([speech.Word(*w) for w in words], parsed[1])
            colour_step = min(time_to_step(end, predictor.cfg.step_seconds), len(pred.tokens) - 1) if end >= 0 else -1
        scene = self.scene_of(pixels, predictor, state)
        view = self.scene_view(pred, pixels, predictor, scene, text, colour_step=colour_step)
        view["labels"] = strip_labels(pred.step_times or [], words, predictor.cfg.step_seconds)
        shown, labels = spoken_columns(pred.step_times or [], words, predictor.cfg.step_seconds)
        maps = hop_maps(view["hops"][shown], labels, tuple(pred.grid), shown.index(colour_step) if colour_step in shown else -1,
                        self.maps_title(view, "Where it looked as each word ended" if words else "Where it looked, moment by moment"))
        heard = plots.spoken_figure(sound.samples, sound.sample_rate, pred.step_times, np.asarray(pred.region_attention), tuple(pred.grid),
                                    words, f"What the model heard and, below, where hop 1 looked at every {1000 * predictor.cfg.step_seconds:.0f} ms")
        step_label = f"RNN step ({1000 * predictor.cfg.step_seconds:.0f} ms of speech each)"
        return self.results(pred, predictor, pixels, scene, text, view, maps, step_label, gr.update(value=heard, visible=True), said)

    def scene_of(self, pixels: np.ndarray, predictor: Predictor, state: dict | None) -> soc.Scene | None:
        """The generated scene these pixels show (ground truth), for the scene models; None for anything else."""
        known = self.known_scene(pixels, state) if predictor.cfg.image_size == soc.SIZE else None
        return soc.scene_from_dicts(known["objects"]) if known else None

    @staticmethod
    def maps_title(view: dict, title: str) -> str:
        return "No attention: uniform maps (pooled image)" if view["uniform"] else title

    def results(self, pred: Prediction, predictor: Predictor, pixels: np.ndarray, scene: soc.Scene | None, question: str, view: dict,
                maps: dict, step_label: str, heard: Any, said: dict | None = None) -> tuple:
        """The outputs both asks share: answer, probabilities, maps, overlay + slider + strip + trace, truth, view, hop, time plot."""
        return (
            self.answer_markdown(pred, predictor, pixels),
            pred.probs,
            maps,
            *self.step_outputs(view, view["step"], 0, slider_label=step_label),
            self.truth_markdown(scene, question, pred, predictor, view, spoken=predictor.cfg.question_input == "audio", said=said),
            view,
            0,  # the overlay shows hop 1 again: the hop selector must say so
            heard,
        )

    # ------------------------------------------------------------------------------------- spoken

    def speak(self, question: str) -> tuple[str, dict, str]:
        """'Speak this question': the typed question voiced by eSpeak NG into the audio input; its words' times are kept."""
        try:
            said = speech.synthesize(question)
        except (speech.SpeechUnavailable, ValueError) as e:
            raise _error(f"Could not speak this question: {e}") from None
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(question.encode()).hexdigest()[:16]
        path = self.audio_dir / f"spoken-{digest}.wav"
        sf.write(path, said.samples, said.sample_rate, subtype="PCM_16")
        state = said_state(question, said.words, f"your question, voiced by eSpeak NG ({speech.DEFAULT_VOICE})", key=file_key(path))
        return str(path), state, self.recording_caption(state, len(said.samples) / said.sample_rate)

    def known_recording(self, recording: str, said: dict | None) -> dict | None:
        """What is known about this recording (its text and word times): a voiced question or a shipped example; else None."""
        try:
            key = file_key(recording)
        except OSError:
            return None
        if said and said.get("key") == key:
            return said
        return self.spoken_examples.get(key)

    def describe_recording(self, recording: str | None, said: dict | None) -> str:
        """On every change of recording: say whether its words are known (the truth needs them)."""
        if not recording:
            return "Record, upload, or click **Speak this question**."
        known = self.known_recording(recording, said)
        if known is not None:
            return self.recording_caption(known)
        return "A recording whose words are not known here: the model answers it; the truth and the word marks need the question's text."

    def spoken_measured(self, checkpoint: str | None) -> str:
        """How sure to be of a spoken answer: the checkpoint's measured accuracy on voices it never heard."""
        m = read_metrics(self.registry.root / checkpoint) if checkpoint else None
        if not m or m.get("nonrelational") is None:
            return "No measured figures for this checkpoint (`python -m mmdemo evaluate --checkpoint DIR --write`)."
        return (f"Measured on the test split in voices it never heard: **{pct(m['nonrelational'])}** of non-relational and "
                f"**{pct(m['relational'])}** of relational questions right; hop 1 on the named object {pct(m.get('grounding'))} of the time.")

    @staticmethod
    def recording_caption(said: dict, seconds: float | None = None) -> str:
        length = f", {seconds:.1f} s" if seconds else ""
        return f"**{html.escape(said['source'][0].upper() + said['source'][1:])}**{length}: “{html.escape(said['text'])}” (word times known)."

    def scene_view(self, pred: Prediction, pixels: np.ndarray, predictor: Predictor, scene: soc.Scene | None, question: str,
                   colour_step: int | None = None) -> dict:
        """Everything the step views need, computed once per answer (playback and scrubbing only read it).
        colour_step: the step that has read the colour word (default: found among the tokens; -1 = none)."""
        hops = np.asarray(pred.hop_attention, dtype=np.float32)  # (T, K, R)
        if colour_step is None:
            colour_step = colour_token_step(pred.tokens) if predictor.cfg.task == "sort-of-clevr" else -1
        first = colour_step if colour_step >= 0 else int(np.argmax(hops[:, 0].max(1)))
        grid = tuple(pred.grid)
        if scene is not None:
            roles = question_roles(scene, question)
            objects = list(scene.objects)
            mass = object_mass(hops, objects, grid[0])  # (T, K, O)
            suffix = {"named": " (named)", "answer": " (answer)"}
            if soc.parse_question(question) and soc.parse_question(question)[0] == "count":
                suffix["answer"] = " (counted)"
            names = [f"{o.colour} {o.shape}{suffix.get(roles.get(o.colour, ''), '')}" for o in objects]
            colours = [plots.OBJECT_LINE[o.colour] for o in objects]
            line_roles = [roles.get(o.colour, "") for o in objects]
            trace_title = "What each object gets, step by step"
        else:
            regions = top_regions(hops, 4)
            mass = hops[:, :, regions]  # (T, K, n)
            names = [f"region ({r // grid[1]}, {r % grid[1]})" for r in regions]
            colours, line_roles = list(plots.REGION_LINE[: len(regions)]), [""] * len(regions)
            trace_title = "The most-looked-at regions, step by step"
        return {
            "hops": hops, "tokens": pred.tokens, "grid": grid, "pixels": pixels, "colour_step": colour_step, "step": first,
            "step_attention": pred.step_attention, "uniform": is_uniform(hops[first, 0]) and predictor.cfg.fusion != "attention",
            "trace": (mass, names, colours, line_roles, trace_title), "shown": (first, 0),
        }

    def step_outputs(self, view: dict | None, step: float, hop: float, slider_label: str | None = None) -> tuple:
        """Overlay, [slider,] token strip and object trace at one step: what playback and scrubbing move together."""
        if not view:
            return (None, gr.skip(), None, None) if slider_label else (None, None, None)
        hops = view["hops"]
        step = int(np.clip(step, 0, hops.shape[0] - 1))
        hop = int(np.clip(hop, 0, hops.shape[1] - 1))
        note = hop_name(hop) + (": no attention, uniform" if view["uniform"] else "")
        strip = token_strip(view["tokens"], view["step_attention"], step, view["colour_step"], note, labels=view.get("labels"))
        trace = None
        if view["trace"] is not None:
            mass, names, colours, roles, title = view["trace"]
            trace = object_trace(mass, view["tokens"], names, colours, roles, view["colour_step"], step, title)
        over = overlay(view["pixels"], hops[step, hop], view["grid"])
        if slider_label:
            slider = gr.update(minimum=0, maximum=max(0, hops.shape[0] - 1), value=step, label=slider_label)
            return over, slider, strip, trace
        return over, strip, trace

    def show_step(self, view: dict | None, step: float, hop: float) -> tuple:
        """Scrubbing, playback and the hop choice. What is on screen already is not sent again: the answer
        set the slider, and rewriting a picture's cache file while the browser reads it cuts the download."""
        if view and view.get("shown") == (int(step), int(hop)):
            return gr.skip(), gr.skip(), gr.skip()
        if view:
            view["shown"] = (int(step), int(hop))  # the session's own state object
        return self.step_outputs(view, step, hop)

    # ------------------------------------------------------------------------------------- playback

    @staticmethod
    def toggle_play(playing: bool, view: dict | None):
        """Play from the first step, or pause: (timer, play button, step, playing)."""
        if playing or not view:
            return gr.Timer(active=False), gr.Button(value="▶ Play"), gr.skip(), False
        return gr.Timer(active=True), gr.Button(value="⏸ Pause"), 0, True

    @staticmethod
    def advance(step: float, view: dict | None):
        """One tick while playing: the next step; at the last step playback stops."""
        if not view:
            return gr.skip(), gr.Timer(active=False), gr.Button(value="▶ Play"), False
        last = view["hops"].shape[0] - 1
        nxt = min(int(step) + 1, last)
        if nxt >= last:
            return nxt, gr.Timer(active=False), gr.Button(value="▶ Play"), False
        return nxt, gr.skip(), gr.skip(), True

    # --------------------------------------------------------------------------------------- editor

    def edit_and_ask(self, state: dict | None, colour: str, action: str, x: float, y: float, other: str, question: str, checkpoint: str | None):
        """A counterfactual of the current generated scene, asked again. A refused edit is a message: the image stays."""
        outputs = 4 + 11  # image, state, caption, message + everything ask returns
        skip = (gr.skip(),) * outputs
        if not state:
            return (*skip[:3], "Scene editing needs a generated scene: click **New random scene** first (or pick an example).", *skip[4:])
        scene = soc.scene_from_dicts(state["objects"])
        try:
            edited = soc.edit_scene(scene, colour, action, int(x), int(y), other)
        except KeyError:
            return (*skip[:3], f"There is no {html.escape(colour)} object in this scene (it was removed).", *skip[4:])
        except ValueError as e:
            return (*skip[:3], f"Not done: {html.escape(str(e))}.", *skip[4:])
        message = f"Done: {action} the {colour} object."
        if action == "move":
            placed = edited.find(colour)
            want = (int(np.clip(x, soc.HALF_SIDE, soc.SIZE - soc.HALF_SIDE - 1)), int(np.clip(y, soc.HALF_SIDE, soc.SIZE - soc.HALF_SIDE - 1)))
            if (placed.x, placed.y) != want:
                message = (f"Moved the {colour} object to ({placed.x}, {placed.y}), the nearest free spot to ({want[0]}, {want[1]}): "
                           f"objects keep {soc.MIN_GAP:g} px between centres.")
        new_state = scene_state(edited, f"edited scene ({state['source'].split(' (')[0]})")
        image = soc.render(edited)
        try:
            answers = self.ask(image, question, checkpoint, new_state)
        except gr.Error as e:
            return (image, new_state, self.scene_caption(new_state["source"]), f"{message} The question could not be asked: {e.message}", *skip[4:])
        return (image, new_state, self.scene_caption(new_state["source"]), message, *answers)

    # --------------------------------------------------------------------------------------- photos

    def zero_shot(self, predictor: Predictor):
        """The zero-shot label bridge beside a photo model (one per checkpoint, built once)."""
        from mmdemo.tasks.matching.photo_eval import ZeroShotReference

        key = str(predictor.folder)
        if key not in self._zero_shot:
            self._zero_shot[key] = ZeroShotReference(predictor.cfg)
        return self._zero_shot[key]

    def photo_default(self) -> str | None:
        """The shipped photo model's name, when this registry has it (what no photo checkpoint name means)."""
        folder = self.registry.default("match")
        return self.registry.name(folder) if (folder / "model.safetensors").is_file() else None

    def photo_match(self, image: Any, sentence: str, checkpoint: str | None):
        """Photos: the answer, probabilities, step maps, overlay + step slider, token strip, how sure to be, view."""
        checkpoint = checkpoint or self.photo_default()
        if not checkpoint:
            raise _error("No photo (image-text matching) checkpoint found under checkpoints/.")
        predictor, pixels, pred = self.answered(checkpoint, image, sentence)
        view = self.scene_view(pred, pixels, predictor, None, sentence)
        view["trace"] = None  # one hop per word: the maps and the overlay say it all
        over, slider, strip, _ = self.step_outputs(view, view["step"], 0, "RNN step (word)")
        fig = hop_maps(view["hops"], pred.tokens, tuple(pred.grid), -1, f"Where each word looked ({pred.grid[0]} x {pred.grid[1]} maps)")
        return self.photo_headline(pred), pred.probs, fig, over, slider, strip, self.photo_reference(predictor, pixels, sentence, pred), view

    @staticmethod
    def photo_headline(pred: Prediction) -> str:
        """The answer and P(match): calibrated on real photos for the shipped matcher; anything else is marked uncalibrated."""
        p = pred.probs.get("match")
        if p is None:
            return f"## {html.escape(pred.answer)}"
        if pred.calibrated:
            return f"## {html.escape(pred.answer)}\nP(match) = **{100 * p:.1f}%**, calibrated on real photos."
        return (f"### {html.escape(pred.answer)} <small>(uncalibrated)</small>\nP(match) = {100 * p:.0f}%: this model's own probability, "
                "not calibrated on photos (trained on clip art); the shipped `photos/match` is calibrated.")

    def photo_reference(self, predictor: Predictor, pixels: np.ndarray, sentence: str, pred: Prediction) -> str:
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
                f"The zero-shot reference (nothing trained; photo ROC AUC {self.zero_shot_auc(predictor.folder)}) leans to **{ref_says}**: cosine "
                f"{cos:.2f}, against {np.median(own_cos):.2f} for a gallery photo's own caption and {np.median(other_cos):.2f} for another's (median).")
            if ref_says != model_says:
                lines.append(f"**They disagree** on this pair: the clip-art model says {model_says}, the zero-shot reference {ref_says}."
                             + (" The calibrated answer above weighs both." if pred.calibrated else ""))
        return "\n\n".join(lines)

    @staticmethod
    def zero_shot_auc(folder: Path) -> str:
        """The zero-shot reference's measured photo ROC AUC (zero-shot.json beside the photo models), or 'n/a'."""
        try:
            return f"{json.loads((folder.parent / 'zero-shot.json').read_text())['photos_roc_auc']:.3f}"
        except (OSError, ValueError, KeyError, TypeError):
            return "n/a"

    def search(self, sentence: str, checkpoint: str | None) -> list[tuple[np.ndarray, str]]:
        """Search by sentence: the example photos ranked by P(match) for the sentence."""
        from mmdemo.photos import gallery

        checkpoint = checkpoint or self.photo_default()
        if not checkpoint:
            raise _error("No photo (image-text matching) checkpoint found under checkpoints/.")
        predictor = self.predictor(checkpoint)
        scored = []
        for photo in gallery():
            try:
                pred = predictor.predict(photo.pixels, sentence)
            except InputError as e:
                raise _error(str(e)) from None
            scored.append((pred.probs.get("match", 0.0), photo))
        scored.sort(key=lambda t: -t[0])
        return [(photo.pixels, f"{rank}. {photo.caption}: P(match) {100 * p:.1f}%") for rank, (p, photo) in enumerate(scored, start=1)]

    def answer(self, image: Any, question: str, checkpoint: str | None) -> dict:
        """API only: the Prediction as JSON (the predict --json contract), no pictures."""
        try:
            return self.predictor(checkpoint).predict(image, question).to_dict()
        except InputError as e:
            raise _error(str(e)) from None

    # ----------------------------------------------------------------------------------- markdown

    @staticmethod
    def answer_markdown(pred: Prediction, predictor: Predictor, pixels: np.ndarray) -> str:
        """The answer headline; out of domain (Prediction.in_domain false): the notice first and the answer greyed."""
        conf = f"{100 * pred.probs[pred.answer]:.1f}%"
        if not pred.in_domain:
            photos = " For photos use the <strong>Photos</strong> tab." if IMAGE_NOTICE in pred.notice else ""
            return (f"<div class='out-of-domain' id='out-of-domain'><strong>Out of domain:</strong> {html.escape(pred.notice)}{photos}</div>\n\n"
                    f"<span class='anyway'>What it would say anyway: {html.escape(pred.answer)} ({conf}), which means nothing here.</span>")
        cut = " (the question was cut to the first tokens the model reads)" if pred.truncated else ""
        fusion = predictor.cfg.fusion
        note = "" if fusion == "attention" else f" This `{fusion}` model has no attention: its maps are uniform."
        if pred.step_times:
            cut = f"; heard {pred.audio_seconds:.2f} s in {len(pred.step_times)} steps"
        note += f"\n\n**Note:** {html.escape(pred.notice)}" if pred.notice else ""
        kinds = ""
        if predictor.cfg.task == "sort-of-clevr":
            kinds = "\n\nBy kind of answer: " + " · ".join(
                f"{kind} {100 * sum(pred.probs.get(a, 0.0) for a in answers):.1f}%" for kind, answers in soc.ANSWER_KINDS)
        return f"## {html.escape(pred.answer)}\nconfidence {conf}{cut}.{note}{kinds}"

    @staticmethod
    def truth_markdown(scene: soc.Scene | None, question: str, pred: Prediction, predictor: Predictor, view: dict,
                       spoken: bool = False, said: dict | None = None) -> str:
        if scene is None:
            return "Ground truth is known only for generated scenes (**New random scene**, the examples, the scene editor)."
        if spoken and said is None:
            return "The words of this recording are not known here, so neither is the true answer: use **Speak this question** or a spoken example."
        if pred.question_scope is not None and not pred.in_domain:
            return "No true answer: the question is not one of the six kinds (listed under the question box)."
        truth = soc.true_answer(scene, question)
        if truth is None:
            return "The generator cannot work out a true answer for this wording (it parses the six kinds in their usual words)."
        verdict = "right" if truth == pred.answer else "wrong"
        lines = [f"True answer: **{truth}**; the model is **{verdict}**."]
        s = view["colour_step"]
        roles = question_roles(scene, question)
        if predictor.cfg.fusion == "attention" and s >= 0 and roles:
            mass = view["trace"][0]  # (T, K, O)
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

    # ----------------------------------------------------------------------------------- compare

    def compare(self, image: Any, question: str, state: dict | None = None) -> tuple[np.ndarray | None, list[list[Any]], list[tuple[np.ndarray, str]], str]:
        """The same input through the default and every ablation checkpoint: the image compared, a table (with the true
        answer and a right/wrong mark when the scene is known), one map each, and what the comparison says."""
        if image is None:
            return None, [], [], NO_SCENE_TO_COMPARE
        root = self.registry.root  # the registry's copy of checkpoints/ (tests give it another root)
        rows, gallery, pixels, scene, truth = [], [], None, None, None
        for name, budget, shipped in compared_models():
            folder = root / shipped.relative_to(ROOT)
            if not (folder / "model.safetensors").is_file():
                continue
            predictor, pixels, pred = self.answered(self.registry.name(folder), image, question)
            if not rows:
                scene = self.scene_of(pixels, predictor, state)
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
            raise _error("No checkpoints found under checkpoints/sort-of-clevr/.")
        return pixels, rows, gallery, self.compare_summary(rows, truth)

    @staticmethod
    def compare_summary(rows: list[list[Any]], truth: str | None) -> str:
        """One plain paragraph: which fusion gets this input right, which wins over the test split, and why."""
        fusions = {f: [r for r in rows if r[0] == "default" and f == "attention" or r[0].startswith(f"{f}-")] for f in ("attention", "sum", "concat")}
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

    # ------------------------------------------------------------------------------------ warm-up

    def warm(self, checkpoint: str | None, photo_checkpoint: str | None, spoken_checkpoint: str | None = None) -> None:
        """Run every model the app shows first once (model, text encoder, figures, pictures), so the first click is fast."""
        image = soc.render(example_scene(EXAMPLE_SEEDS[0]))
        if checkpoint is not None:
            view = self.ask(image, "Quick question: what shape is the object closest to the red one?", checkpoint, None)[-3]
            self.show_step(view, 1, 1)
        examples = spoken_examples()
        if spoken_checkpoint is not None and examples:
            self.ask_audio(image, str(SPOKEN_EXAMPLES / examples[0]["file"]), spoken_checkpoint, None, None)
        if photo_checkpoint is not None:
            from mmdemo.photos import gallery

            self.photo_match(gallery()[0].pixels, "a cat on a sofa", photo_checkpoint)


def _examples(cache: Path) -> list[list[str]]:
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for seed, question in zip(EXAMPLE_SEEDS, EXAMPLE_QUESTIONS):
        path = cache / f"scene-{seed}.png"
        if not path.is_file():
            Image.fromarray(soc.render(example_scene(seed))).save(path)
        out.append([str(path), question])
    return out


def _photo_examples(cache: Path) -> tuple[list[list[str]], list[str]]:
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


NO_SCENE_TO_COMPARE = "No scene yet: pick an example or click **New random scene** on the **Ask** tab, then come back and compare."
EMPTY_ANSWER = ("**Start here:** click an example on the left (or **New random scene**). The answer appears here, with the "
                "picture of where the model looked; then press **▶ Play** to watch it read the question word by word.")
TRACE_CAPTION = ("**Object trace**: how much of each hop's attention falls on each object at every step (the weights of the 5 x 5 "
                 "regions the object touches). The named object is drawn thick, the answer object dashed. Two objects in one "
                 "region both count its weight, so a step's values can add up to more than 1.")
KINDS_MARKDOWN = "**What you can ask**: six kinds of question about one of the six colours (red, green, blue, orange, gray, yellow).\n\n" + "\n".join(
    f"- {kind}: *{example}*" for kind, example in scope.KINDS) + "\n\nOther questions, other languages and other images get a notice, not an answer."


MODEL_CARD = """
### What this is
A small recurrent network (an RNN) reads the question one piece of a word at a time. At every step it also
looks at the picture; how it combines the two is the **fusion**. `sum` and `concat` mix in one average of
the whole picture, so they cannot look anywhere in particular. `attention` chooses where to look in a 5 x 5
grid, twice per step: **hop 1 (find)** looks for the object the question names, **hop 2 (relate)** looks from
there to the object the answer is about (the closest or furthest one, or those of the same shape). The
pictures in the Ask tab are those looks, step by step. The default reads strictly left to right, so before
the question names its object both hops spread evenly over the picture.

It learned from generated scenes, where the right answer and every object's place are known; while learning
it was also told where the named and the answer object are. When it answers it gets no help: how often it
looks at the right object is measured on scenes it never saw (**grounding**, in the table below).

The **Photos** tab uses another model, which says whether a sentence describes a photo. Its answer is a
probability calibrated on real photos (right {photo_accuracy} of the time on photos held out from every choice); it also
shows where each word of the sentence looked.

### Limits
- The scene models know only the generated scenes (up to six coloured squares and circles on white). The app
  says when an image does not look like one and shows the answer only greyed.
- Questions outside the six kinds (other attributes, greetings, other languages, nonsense) are flagged by a
  measured detector and the answer is shown greyed. Rewordings never seen in training mostly work: each of
  15 held-out ones gets 90% or more on the test scenes; "closest" questions are the hardest in any wording.
- `sum` and `concat` have no attention: their maps are even by construction.

### Words used here
- **token**: the piece of text the model reads in one step (a word, or part of a rare word: "thingamajig" is "thing ##ama ##ji ##g").
- **step**: one token read; the RNN updates its memory once per step.
- **fusion**: how the picture is combined with the text at each step: `sum`, `concat` or `attention`.
- **hop**: one look at the picture; the attention models look twice per step (find, then relate).
- **reads word by word** (causal): step t knows only the tokens up to t. **Reads the whole question first**: every
  step already knows the whole sentence, so its looks do not show the reading as it happens.
- **grounding**: the share of test questions about one object where hop 1's strongest look, at any step, lands on
  that object.
- **training budget**: how long a model was trained (full: 16 passes over the data; brief: 2).
- **frozen encoders**: the pretrained text reader (MiniLM) and photo reader (EfficientNet-Lite0) come from pip
  packages and are not changed by training.
- **label bridge**: for photos, the photo reader's guesses of what is in each region (ImageNet's 1,000 object names)
  turned into the text reader's vectors, so words and regions can be compared.
- **calibrated**: a probability of 70% is right about 70% of the time; **ECE** measures how far from that it is.
- **ROC AUC**: the chance that a true pair scores above a false one (0.5 is guessing, 1 is perfect).
"""


# ------------------------------------------------------------------------------------------------ tabs


def build_ask_tab(handlers: Handlers, choices: list, default_choice: str | None, example_dir: Path, spoken_choices: list) -> dict:
    """The Ask tab: image + question (typed or spoken) in; answer, overlay with playback, token strip, truth, trace,
    step maps and, for a spoken question, the recording against time out."""
    scene = gr.State(None)
    said = gr.State(None)  # what is known about the recording: its text and word times
    view = gr.State(None)
    playing = gr.State(False)
    timer = gr.Timer(PLAY_SECONDS, active=False)
    with gr.Row():
        with gr.Column(scale=1):
            image = SafeImage(type="filepath", image_mode=None, format="png", label="Image", height=320, elem_id="image", render=False)
            question = gr.Textbox(label="Question", value=EXAMPLE_QUESTIONS[2], max_length=10_000, elem_id="question", render=False)
            examples = gr.Examples(_examples(example_dir), inputs=[image, question], elem_id="ask-examples", examples_per_page=6,
                                   label="Examples: click one to see the answer (generated scenes, so the truth is known)")
            image.render()
            with gr.Row():
                seed = SeedNumber(value=-1, precision=0, label="seed (-1: a new scene every click)", minimum=-1, maximum=MAX_SEED, elem_id="seed")
                new_scene = gr.Button("New random scene", elem_id="new-scene")
            scene_info = gr.Markdown("Upload an image, pick an example, or generate a scene.", elem_id="scene-info")
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
                recording_info = gr.Markdown("Record, upload, or click **Speak this question**." if speakable else
                                             f"**Speak this question** is off here: {html.escape(why)}", elem_id="recording-info")
                spoken_checkpoint = gr.Dropdown(choices=spoken_choices, value=spoken_choices[0][1] if spoken_choices else None,
                                                label="Spoken-question checkpoint (measured accuracy)", elem_id="spoken-checkpoint")
                spoken_measured = gr.Markdown(handlers.spoken_measured(spoken_choices[0][1] if spoken_choices else None), elem_id="spoken-measured")
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

    outputs = [answer, probs, heatmap, overlay_img, step, tokens, trace, truth, view, hop, heard]
    asked = [image, question, checkpoint, scene]
    examples.load_input_event.then(handlers.ask, asked, outputs, api_name=False).success(None, js=SHOW_ANSWER_JS)  # an example answers
    new_scene.click(handlers.random_scene, [seed], [image, scene, scene_info], api_name="random_scene").then(
        handlers.ask, asked, outputs, api_name=False
    ).success(None, js=SHOW_ANSWER_JS)
    image.change(handlers.describe_image, [image, scene], [scene, scene_info], api_name=False, show_progress="hidden")
    ask.click(handlers.ask, asked, outputs, api_name="predict").success(None, js=SHOW_ANSWER_JS)
    question.submit(handlers.ask, asked, outputs, api_name=False).success(None, js=SHOW_ANSWER_JS)
    speak.click(handlers.speak, [question], [audio, said, recording_info], api_name="speak")
    spoken_checkpoint.change(handlers.spoken_measured, [spoken_checkpoint], spoken_measured, api_name=False, show_progress="hidden")
    audio.change(handlers.describe_recording, [audio, said], recording_info, api_name=False, show_progress="hidden")
    ask_audio.click(handlers.ask_audio, [image, audio, spoken_checkpoint, scene, said], outputs, api_name="predict_audio").success(None, js=SHOW_ANSWER_JS)
    step_views = [overlay_img, tokens, trace]
    step.change(handlers.show_step, [view, step, hop], step_views, api_name=False, show_progress="hidden")
    hop.change(handlers.show_step, [view, step, hop], step_views, api_name=False, show_progress="hidden")
    play.click(handlers.toggle_play, [playing, view], [timer, play, step, playing], api_name=False, show_progress="hidden")
    timer.tick(handlers.advance, [step, view], [step, timer, play, playing], api_name=False, show_progress="hidden")
    apply_edit.click(
        handlers.edit_and_ask, [scene, edit_colour, edit_action, edit_x, edit_y, edit_other, question, checkpoint],
        [image, scene, scene_info, edit_message, *outputs], api_name="edit_scene",
    )
    return {"image": image, "question": question, "checkpoint": checkpoint, "spoken_checkpoint": spoken_checkpoint, "scene": scene}


def build_photos_tab(handlers: Handlers, photo_choices: list, photo_default: str | None, example_dir: Path) -> None:
    """Photos: does a sentence describe a photo? The answer beside how sure to be, per-word attention, search."""
    view = gr.State(None)
    gr.Markdown(
        "Real photos: does the sentence describe the photo? The answer is a probability calibrated on real photos; below it, "
        "how sure to be and where each word of the sentence looked (the RNN + attention model, trained on public-domain clip art)."
    )
    with gr.Row():
        with gr.Column(scale=1):
            photo = SafeImage(type="filepath", image_mode=None, label="Photo", height=300, elem_id="photo", render=False)
            sentence = gr.Textbox(label="Sentence", value="a cat", max_length=10_000, elem_id="sentence", render=False)
            examples, labels = _photo_examples(example_dir)
            photo_examples = gr.Examples(examples, inputs=[photo, sentence], example_labels=labels, elem_id="photo-examples",
                                         label="Example photos: click one to see the answer (the last pairs a photo with a sentence that does not describe it)")
            photo.render()
            sentence.render()
            photo_checkpoint = gr.Dropdown(choices=photo_choices, value=photo_default, label="Model", elem_id="photo-checkpoint")
            match_btn = gr.Button("Match", variant="primary", elem_id="match")
        with gr.Column(scale=1):
            photo_answer = gr.Markdown("**Start here:** click an example photo on the left, or upload a photo and write a sentence, "
                                       "then **Match**.", elem_id="photo-answer")
            photo_reference = gr.Markdown(elem_id="photo-reference")
            photo_overlay = gr.Image(show_label=False, interactive=False, format="png", height=300, elem_id="photo-overlay", buttons=["download"])
            photo_tokens = gr.HTML(elem_id="photo-tokens")
            photo_step = gr.Slider(0, 1, value=0, step=1, label="RNN step (word)", elem_id="photo-step")
            photo_probs = gr.Label(num_top_classes=2, label="Probabilities", elem_id="photo-probs")
    photo_heatmap = SpecPlot(label="Where each word looked (scrolls sideways on a phone)", elem_id="photo-heatmap")
    with gr.Accordion("Search by sentence: rank the example photos", open=True):
        query = gr.Textbox(label="Sentence", value="a cup of coffee", max_length=10_000, elem_id="query")
        search_btn = gr.Button("Search", elem_id="search")
        ranked = gr.Gallery(label="Example photos, best match first", columns=4, height="auto", elem_id="ranked")
    photo_outputs = [photo_answer, photo_probs, photo_heatmap, photo_overlay, photo_step, photo_tokens, photo_reference, view]
    match_btn.click(handlers.photo_match, [photo, sentence, photo_checkpoint], photo_outputs, api_name="photo_match").success(
        None, js=SHOW_PHOTO_ANSWER_JS)
    photo_examples.load_input_event.then(handlers.photo_match, [photo, sentence, photo_checkpoint], photo_outputs, api_name=False).success(
        None, js=SHOW_PHOTO_ANSWER_JS)  # an example answers
    sentence.submit(handlers.photo_match, [photo, sentence, photo_checkpoint], photo_outputs, api_name=False)
    photo_step.change(lambda v, s: handlers.show_step(v, s, 0)[:2], [view, photo_step], [photo_overlay, photo_tokens],
                      api_name=False, show_progress="hidden")
    search_btn.click(handlers.search, [query, photo_checkpoint], ranked, api_name="search")


def build_compare_tab(handlers: Handlers, ask: dict) -> None:
    """Compare: the Ask tab's image and question through the default and every ablation checkpoint."""
    gr.Markdown("The Ask tab's image and question, answered by every model: the default, the other two fusions (sum, concat) trained "
                "the same way, and smaller models trained briefly (each row says how it was trained). Ask on the Ask tab first.")
    compare_btn = gr.Button("Compare all models", variant="primary", elem_id="compare")
    with gr.Row():
        compared = gr.Image(label="The image compared", interactive=False, format="png", height=240, scale=1, min_width=240, elem_id="compare-image")
        with gr.Column(scale=3, min_width=320):  # a phone: below the image, not squeezed beside it
            compare_note = gr.Markdown(NO_SCENE_TO_COMPARE, elem_id="compare-summary")
    compare_table = gr.Dataframe(
        headers=["model", "training", "answer", "true answer", "right?", "confidence", "non\u2011relational (test)", "relational (test)",
                 "overall (test)"],
        interactive=False, wrap=True, max_height=2000, elem_id="compare-table",  # every row shown, no scroll box
    )
    compare_gallery = gr.Gallery(label="Where hop 1 looked at the colour word, each model", columns=4, height="auto", format="png",
                                 object_fit="contain", elem_id="compare-gallery")
    gr.Markdown("Published results on the original Sort-of-CLEVR (questions as codes, not sentences), for scale:\n\n" + paper_table(),
                elem_id="paper-table")
    compare_btn.click(handlers.compare, [ask["image"], ask["question"], ask["scene"]], [compared, compare_table, compare_gallery, compare_note],
                      api_name="compare")


def build_model_card_tab() -> None:
    from mmdemo.tasks.matching.calibrate import CALIBRATION

    accuracy = pct(json.loads(CALIBRATION.read_text())["test"]["accuracy"]) if CALIBRATION.is_file() else "n/a"
    gr.Markdown(MODEL_CARD.format(photo_accuracy=accuracy), elem_id="model-card-text")
    gr.Markdown("### Benchmark (test split, from each checkpoint's metrics.json)\n" + results_table(), elem_id="model-card")


def build_demo(predictor: Predictor | None = None, registry: Registry | None = None, example_dir: Path | None = None, warm: bool = False) -> gr.Blocks:
    """The whole UI over a registry of checkpoints (the given predictor is served first); warm runs every
    model the app shows first once, before it serves."""
    registry = registry or Registry(preload=predictor)
    handlers = Handlers(registry)
    choices = registry.choices("sort-of-clevr")
    default_choice = registry.name(predictor.folder) if predictor is not None else (choices[0][1] if choices else None)
    spoken_choices = registry.choices("sort-of-clevr", question_input="audio")
    photo_choices = registry.choices("match")
    photo_default = photo_choices[0][1] if photo_choices else None
    example_dir = example_dir or Path(os.environ.get("MMDEMO_EXAMPLES", "/tmp/mmdemo-examples"))
    if warm:
        handlers.warm(default_choice, photo_default, spoken_choices[0][1] if spoken_choices else None)

    with gr.Blocks(title="mmdemo: where does the RNN look?") as demo:
        gr.Markdown("# mmdemo: where does the RNN look?\nAn image and a question in; the answer and, for every step of the RNN's reading, where in the image it looked.")
        with gr.Tab("Ask"):
            ask = build_ask_tab(handlers, choices, default_choice, example_dir, spoken_choices)
        with gr.Tab("Photos"):
            build_photos_tab(handlers, photo_choices, photo_default, example_dir)
        with gr.Tab("Compare"):
            build_compare_tab(handlers, ask)
        with gr.Tab("Model card"):
            build_model_card_tab()
        # API-only endpoint: the prediction as JSON, without rendering maps or overlays.
        answer_json = gr.JSON(visible=False)
        answer_btn = gr.Button(visible=False)
        answer_btn.click(handlers.answer, [ask["image"], ask["question"], ask["checkpoint"]], answer_json, api_name="answer")
    return demo


def launch_kwargs(drain: Drain | None = None) -> dict[str, Any]:
    """Local by default (127.0.0.1:7860; GRADIO_SERVER_NAME/PORT override); never a share link; request bodies
    capped (mmdemo.serving) and, with a drain, counted for a graceful SIGTERM."""
    middleware = [Middleware(GuardMiddleware, drain=drain or Drain())]
    return {"share": False, "max_file_size": MAX_UPLOAD, "show_error": False, "css": CSS, "app_kwargs": {"middleware": middleware}}


def pending_events(demo: gr.Blocks) -> int:
    """Events gradio has accepted and not yet delivered (queued, running or being sent back)."""
    pending = getattr(getattr(demo, "_queue", None), "pending_event_ids_session", {})
    return sum(len(ids) for ids in list(pending.values()))


if __name__ == "__main__":
    limit_malloc_arenas()  # before any worker thread: memory stays flat under a long run of requests
    demo = build_demo(Predictor.load(), warm=True)
    # Requests run in threads sharing one read-only model; 4 at once keeps 2-core latency sane.
    demo.queue(default_concurrency_limit=4, max_size=64, api_open=False)
    drain = Drain()
    demo.launch(**launch_kwargs(drain), prevent_thread_lock=True)
    # SIGTERM: no new requests, the accepted ones finish (bounded), one log line, exit 0.
    raise SystemExit(serve_until_stopped(drain, lambda: pending_events(demo), lambda: demo.close(verbose=False)))
