"""mmdemo's Gradio app: ask, see where the RNN looked at every step, change the scene, compare fusions.

Gradio only: every number comes from mmdemo (Predictor, generator, plots). Importing this module has no
side effects; `python app.py` loads the default checkpoint once and launches.
"""

from __future__ import annotations

import html
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image
from starlette.middleware import Middleware

from mmdemo.checkpoint import CheckpointError, read_metrics
from mmdemo.data import sort_of_clevr as soc
from mmdemo.evaluate import most_attended_region, region_holds
from mmdemo.grid import grid_folder, paper_table, pct, results_table
from mmdemo.inference import InputError, Prediction, Predictor
from mmdemo.limits import MAX_FILE_BYTES, MAX_SEED
from mmdemo.plots import attention_heatmap, overlay, step_highlights
from mmdemo.registry import Registry
from mmdemo.serving import Drain, GuardMiddleware, serve_until_stopped

MAX_UPLOAD = MAX_FILE_BYTES  # bytes per uploaded file (mmdemo.limits; README "Limits")
SEED_RULE = f"The seed must be a whole number from 0 to {MAX_SEED}, or -1 for a random scene."
EXAMPLE_SEEDS = (3, 14, 27, 42, 58, 99)
EXAMPLE_QUESTIONS = (
    "What shape is the red object?",
    "Is the blue object on the left side of the image?",
    "What shape is the object closest to the green object?",
    "How many objects have the same shape as the orange object?",
    "Is the gray object in the top half of the image?",
    "What shape is the object furthest from the yellow object?",
)


class SafeImage(gr.Image):
    """gr.Image whose upload step turns unreadable files into a clear message instead of a traceback."""

    is_template = True  # render with gradio's own Image frontend, not as a custom component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise gr.Error(f"Not a readable image ({type(e).__name__}).", print_exception=False) from None


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


# ------------------------------------------------------------------------------------------ handlers
# Plain functions of plain values (tested without a server); the Blocks below only wire them up.


class Handlers:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def predictor(self, checkpoint: str | None) -> Predictor:
        try:
            return self.registry.get(checkpoint or None)
        except CheckpointError as e:
            raise _error(f"That checkpoint cannot be loaded: {e}") from None

    def random_scene(self, seed: float | None) -> tuple[np.ndarray, list[dict], int, str]:
        """A new generated scene: image, scene (ground truth), the seed used, and a caption."""
        usable = seed is None or seed == -1 or (isinstance(seed, (int, float)) and 0 <= seed <= MAX_SEED and float(seed).is_integer())
        if not usable:  # a seed past 64 bits cannot even be sent back: the client would wait forever
            raise _error(SEED_RULE)
        seed = int(np.random.default_rng().integers(0, 1_000_000)) if seed is None or seed < 0 else int(seed)
        scene = soc.random_scene(soc.scene_rng("val", seed, 0))
        return soc.render(scene), scene.to_dict(), seed, f"Generated scene, seed **{seed}** (ground truth known)."

    def edit(self, scene: list[dict] | None, colour: str, action: str, x: float, y: float, other: str) -> tuple[np.ndarray, list[dict], str]:
        """A counterfactual of the current generated scene."""
        if not scene:
            raise _error("Scene editing needs a generated scene: click 'New random scene' first.")
        try:
            edited = soc.edit_scene(soc.scene_from_dicts(scene), colour, action, int(x), int(y), other)
        except KeyError:
            raise _error(f"There is no {colour} object in this scene (it was removed).") from None
        except ValueError as e:
            raise _error(str(e)) from None
        return soc.render(edited), edited.to_dict(), f"Edited scene: {action} the {colour} object."

    def ask(self, image: Any, question: str, checkpoint: str | None, scene: list[dict] | None):
        """Answer, probabilities, heatmap, overlay at the most-attended step, step slider, token weights, truth."""
        predictor = self.predictor(checkpoint)
        try:
            pixels = predictor.prepare(image)  # decode once; predict on the exact pixels shown
            pred = predictor.predict(pixels, question)
        except InputError as e:
            raise _error(str(e)) from None
        heatmap, over, slider, highlights, view = self.attention_views(
            pred, pixels, checkpoint, "hop-1 attention: tokens x image regions", "RNN step (token index, as in the heatmap rows)"
        )
        return (
            self.answer_markdown(pred, predictor), pred.probs, heatmap, over, slider, highlights,
            self.truth_markdown(scene, question, pred, predictor), view,
        )

    def attention_views(self, pred: Prediction, pixels: np.ndarray, checkpoint: str | None, title: str, slider_label: str):
        """Heatmap, overlay at the most-attended step, step slider, step weights on the tokens, and the view state."""
        step = int(np.argmax(np.asarray(pred.region_attention).max(1))) if pred.tokens else 0
        view = {"pred": pred.to_dict(), "pixels": pixels.tolist(), "checkpoint": checkpoint}
        return (
            attention_heatmap(np.asarray(pred.region_attention), pred.tokens, tuple(pred.grid), title),
            self.overlay_at(view, step, 0),
            gr.Slider(minimum=0, maximum=max(0, len(pred.tokens) - 1), value=step, step=1, label=slider_label),
            step_highlights(pred.tokens, pred.step_attention),
            view,
        )

    def photo_default(self) -> str | None:
        """The shipped photo model's name, when this registry has it (what no photo checkpoint name means)."""
        folder = self.registry.default("match")
        return self.registry.name(folder) if (folder / "model.safetensors").is_file() else None

    def photo_match(self, image: Any, sentence: str, checkpoint: str | None):
        """Photos mode: match probability, per-word attention heatmap, overlay + step slider, step weights."""
        checkpoint = checkpoint or self.photo_default()
        if not checkpoint:
            raise _error("No photo (image-text matching) checkpoint found under checkpoints/.")
        predictor = self.predictor(checkpoint)
        try:
            pixels = predictor.prepare(image)
            pred = predictor.predict(pixels, sentence)
        except InputError as e:
            raise _error(str(e)) from None
        p_match = pred.probs.get("match")
        head = f"## {html.escape(pred.answer)}\n" + (f"P(match) = {100 * p_match:.1f}%" if p_match is not None else "")
        return (head, pred.probs, *self.attention_views(pred, pixels, checkpoint, "attention: words x 7x7 photo regions", "RNN step (word)"))

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

    @staticmethod
    def overlay_at(view: dict | None, step: float, hop: float) -> np.ndarray | None:
        """The image tinted by one step's (and hop's) attention."""
        if not view:
            return None
        pred = view["pred"]
        hops = np.asarray(pred["hop_attention"])  # (T, K, R)
        step = int(np.clip(step, 0, hops.shape[0] - 1))
        hop = int(np.clip(hop, 0, hops.shape[1] - 1))
        return overlay(np.asarray(view["pixels"], dtype=np.uint8), hops[step, hop], tuple(pred["grid"]))

    @staticmethod
    def answer_markdown(pred: Prediction, predictor: Predictor) -> str:
        conf = pred.probs[pred.answer]
        cut = " (the question was cut to the first tokens the model reads)" if pred.truncated else ""
        fusion = predictor.cfg.fusion
        note = "" if fusion == "attention" else f" This `{fusion}` model has no attention: its maps are uniform."
        return f"## {html.escape(pred.answer)}\nconfidence {100 * conf:.1f}%{cut}.{note}"

    @staticmethod
    def truth_markdown(scene: list[dict] | None, question: str, pred: Prediction, predictor: Predictor) -> str:
        if not scene:
            return "Ground truth is known only for generated scenes."
        s = soc.scene_from_dicts(scene)
        truth = soc.true_answer(s, question)
        if truth is None:
            return "The truth checker did not understand this question (it knows the spec's six question types)."
        verdict = "right" if truth == pred.answer else "wrong"
        lines = [f"True answer: **{truth}**; the model is **{verdict}**."]
        parsed = soc.parse_question(question)
        if predictor.cfg.fusion == "attention" and parsed and parsed[0] in soc.NONREL:
            region = most_attended_region(np.asarray(pred.region_attention), len(pred.tokens))
            hit = region_holds(region, pred.grid[1], s.find(parsed[1]))
            lines.append(f"Attention {'landed' if hit else 'did not land'} on the {parsed[1]} object (most-attended region r{region // pred.grid[1]},{region % pred.grid[1]}).")
        return "\n\n".join(lines)

    def compare(self, image: Any, question: str) -> tuple[list[list[Any]], list[tuple[np.ndarray, str]]]:
        """The same input through every ablation checkpoint: a table and one attention overlay each."""
        rows, gallery = [], []
        for fusion in ("sum", "concat", "attention"):
            for cell in ("rnn", "lstm", "gru"):
                folder = grid_folder(fusion, cell)
                if not (folder / "model.safetensors").is_file():
                    continue
                predictor = self.predictor(self.registry.name(folder))
                try:
                    pixels = predictor.prepare(image)
                    pred = predictor.predict(pixels, question)
                except InputError as e:
                    raise _error(str(e)) from None
                m = read_metrics(folder) or {}
                rows.append([
                    f"{fusion}-{cell}", pred.answer, round(100 * pred.probs[pred.answer], 1),
                    pct(m.get("nonrelational")), pct(m.get("relational")), pct(m.get("overall")),
                ])
                att = np.asarray(pred.region_attention)
                step = int(np.argmax(att.max(1)))
                gallery.append((overlay(pixels, att[step], tuple(pred.grid)), f"{fusion}-{cell}: {pred.answer} (step '{pred.tokens[step]}')"))
        if not rows:
            raise _error("No ablation checkpoints found under checkpoints/sort-of-clevr/.")
        return rows, gallery


def _examples(cache: Path) -> list[list[str]]:
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for seed, question in zip(EXAMPLE_SEEDS, EXAMPLE_QUESTIONS):
        path = cache / f"scene-{seed}.png"
        if not path.is_file():
            Image.fromarray(soc.render(soc.random_scene(soc.scene_rng("val", seed, 0)))).save(path)
        out.append([str(path), question])
    return out


def _photo_examples(cache: Path) -> list[list[str]]:
    from mmdemo.photos import gallery

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for photo, sentence in zip(gallery()[:6], ("a cat", "an astronaut", "a cup of coffee", "a rocket", "a motorcycle", "a red car")):
        path = cache / f"photo-{photo.name}.png"
        if not path.is_file():
            Image.fromarray(photo.pixels).save(path)
        out.append([str(path), sentence])
    return out


MODEL_CARD = """
### What this is
An RNN reads the question token by token (the real MiniLM WordPiece tokens; the default model reads
frozen contextual MiniLM states of them, so unseen wordings of a question mostly work); at every step
a fusion brings in the image: `sum` / `concat` add or append one pooled image vector, `attention` looks at a
5 x 5 grid of CNN regions (two hops per step). The heatmap is that attention, per step. During
training on generated scenes, the attention was told where the named object is (an auxiliary loss);
at inference it is on its own, and the grounding rate below is measured on held-out scenes.

The Photos tab uses another model: frozen EfficientNet-Lite0 (7 x 7 regions) and frozen MiniLM, the
same RNN with one attention hop per word, beside the pooled picture, trained to say whether a sentence describes a picture on ~3,000 public-domain
Open Clip Art drawings. Its vocabulary of things comes from ImageNet's class names (the label bridge),
which also steers where each word looks: it knows cats and cups far better than, say, astronauts, and
it can be fooled by colours on photos (the cat with "a red car").

### Limits
- The Sort-of-CLEVR models know only Sort-of-CLEVR-NL scenes (six coloured squares/circles on white,
  75 x 75 px). On a photo they still answer one of their ten labels, without meaning.
- Questions outside the six spec types get one of the ten answers anyway; the truth checker shows
  when it cannot parse a question.
- `sum` and `concat` have no attention: their maps are uniform by construction.
"""


def build_demo(predictor: Predictor | None = None, registry: Registry | None = None, example_dir: Path | None = None) -> gr.Blocks:
    """The whole UI over a registry of checkpoints (the given predictor is served first)."""
    registry = registry or Registry(preload=predictor)
    handlers = Handlers(registry)
    choices = registry.choices("sort-of-clevr")
    default_choice = registry.name(predictor.folder) if predictor is not None else (choices[0][1] if choices else None)
    photo_choices = registry.choices("match")
    photo_default = photo_choices[0][1] if photo_choices else None
    example_dir = example_dir or Path(os.environ.get("MMDEMO_EXAMPLES", "/tmp/mmdemo-examples"))

    with gr.Blocks(title="mmdemo: where does the RNN look?") as demo:
        scene_state = gr.State(None)
        view_state = gr.State(None)
        gr.Markdown("# mmdemo: where does the RNN look?\nAn image and a question in; the answer and, for every RNN step, where in the image the model looked.")
        with gr.Tab("Ask"):
            with gr.Row():
                with gr.Column(scale=1):
                    image = SafeImage(type="filepath", image_mode=None, label="Image", height=300, elem_id="image")
                    with gr.Row():
                        seed = SeedNumber(value=-1, precision=0, label="seed (-1: random)", minimum=-1, maximum=MAX_SEED, elem_id="seed")
                        new_scene = gr.Button("New random scene", elem_id="new-scene")
                    scene_info = gr.Markdown("Upload an image, pick an example, or generate a scene.")
                    question = gr.Textbox(label="Question", value=EXAMPLE_QUESTIONS[0], max_length=10_000, elem_id="question")
                    checkpoint = gr.Dropdown(choices=choices, value=default_choice, label="Checkpoint (measured accuracy)", elem_id="checkpoint")
                    ask = gr.Button("Ask", variant="primary", elem_id="ask")
                with gr.Column(scale=1):
                    answer = gr.Markdown(elem_id="answer")
                    probs = gr.Label(num_top_classes=4, label="Probabilities")
                    truth = gr.Markdown(elem_id="truth")
                    overlay_img = gr.Image(label="Attention at one step (magenta = more)", interactive=False, height=300, elem_id="overlay")
                    step = gr.Slider(0, 1, value=0, step=1, label="RNN step (token)", elem_id="step")
                    hop = gr.Radio([0, 1], value=0, label="attention hop", elem_id="hop")
            steps_view = gr.HighlightedText(label="Attention over steps (how much each token's step counts)", elem_id="steps")
            heatmap = gr.Plot(label="Per-step attention", elem_id="heatmap")
            gr.Examples(_examples(example_dir), inputs=[image, question], label="Examples (generated scenes; truth shown after 'New random scene' only)")
            with gr.Accordion("Change the scene (counterfactuals)", open=False):
                with gr.Row():
                    edit_colour = gr.Dropdown(list(soc.COLOURS), value="red", label="object")
                    edit_action = gr.Radio(list(soc.EDIT_ACTIONS), value="move", label="action")
                    edit_other = gr.Dropdown(list(soc.COLOURS), value="blue", label="swap colour with")
                with gr.Row():
                    edit_x = gr.Slider(5, 69, value=37, step=1, label="new x")
                    edit_y = gr.Slider(5, 69, value=37, step=1, label="new y")
                apply_edit = gr.Button("Apply and ask again", elem_id="apply-edit")
        with gr.Tab("Photos"):
            photo_view = gr.State(None)
            gr.Markdown(
                "Real photos: does the sentence describe the photo? Frozen EfficientNet-Lite0 (7 x 7 regions) and "
                "frozen MiniLM, with the same RNN + attention fusion, trained on public-domain Open Clip Art."
            )
            with gr.Row():
                with gr.Column(scale=1):
                    photo = SafeImage(type="filepath", image_mode=None, label="Photo", height=300, elem_id="photo")
                    sentence = gr.Textbox(label="Sentence", value="a cat", max_length=10_000, elem_id="sentence")
                    photo_checkpoint = gr.Dropdown(choices=photo_choices, value=photo_default, label="Matching checkpoint", elem_id="photo-checkpoint")
                    match_btn = gr.Button("Match", variant="primary", elem_id="match")
                with gr.Column(scale=1):
                    photo_answer = gr.Markdown(elem_id="photo-answer")
                    photo_probs = gr.Label(num_top_classes=2, label="Probabilities")
                    photo_overlay = gr.Image(label="Attention at one step (magenta = more)", interactive=False, height=300, elem_id="photo-overlay")
                    photo_step = gr.Slider(0, 1, value=0, step=1, label="RNN step (word)", elem_id="photo-step")
            photo_steps = gr.HighlightedText(label="Attention over steps", elem_id="photo-steps")
            photo_heatmap = gr.Plot(label="Per-word attention over the 7 x 7 grid", elem_id="photo-heatmap")
            gr.Examples(_photo_examples(example_dir), inputs=[photo, sentence], label="Example photos (scikit-image)")
            with gr.Accordion("Search by sentence: rank the example photos", open=True):
                query = gr.Textbox(label="Sentence", value="a cup of coffee", max_length=10_000, elem_id="query")
                search_btn = gr.Button("Search", elem_id="search")
                ranked = gr.Gallery(label="Example photos, best match first", columns=4, height="auto", elem_id="ranked")
        with gr.Tab("Compare"):
            gr.Markdown("The same image and question through every ablation checkpoint: sum / concat / attention x rnn / lstm / gru.")
            compare_btn = gr.Button("Compare all fusions", variant="primary", elem_id="compare")
            compare_table = gr.Dataframe(
                headers=["model", "answer", "confidence %", "test non-relational", "test relational", "test overall"],
                interactive=False, elem_id="compare-table",
            )
            compare_gallery = gr.Gallery(label="Most-attended step of each model", columns=3, height="auto")
            gr.Markdown("Reference results on the original Sort-of-CLEVR (binary-coded questions):\n\n" + paper_table())
        with gr.Tab("Model card"):
            gr.Markdown(MODEL_CARD)
            gr.Markdown("### Benchmark (test split, from each checkpoint's metrics.json)\n" + results_table())

        outputs = [answer, probs, heatmap, overlay_img, step, steps_view, truth, view_state]
        new_scene.click(handlers.random_scene, [seed], [image, scene_state, seed, scene_info], api_name="random_scene").then(
            handlers.ask, [image, question, checkpoint, scene_state], outputs, api_name=False
        )
        image.upload(lambda: (None, "Uploaded image (no ground truth)."), None, [scene_state, scene_info], api_name=False)
        ask.click(handlers.ask, [image, question, checkpoint, scene_state], outputs, api_name="predict")
        question.submit(handlers.ask, [image, question, checkpoint, scene_state], outputs, api_name=False)
        step.change(handlers.overlay_at, [view_state, step, hop], overlay_img, api_name=False, show_progress="hidden")
        hop.change(handlers.overlay_at, [view_state, step, hop], overlay_img, api_name=False, show_progress="hidden")
        apply_edit.click(
            handlers.edit, [scene_state, edit_colour, edit_action, edit_x, edit_y, edit_other], [image, scene_state, scene_info], api_name="edit_scene"
        ).then(handlers.ask, [image, question, checkpoint, scene_state], outputs, api_name=False)
        photo_outputs = [photo_answer, photo_probs, photo_heatmap, photo_overlay, photo_step, photo_steps, photo_view]
        match_btn.click(handlers.photo_match, [photo, sentence, photo_checkpoint], photo_outputs, api_name="photo_match")
        sentence.submit(handlers.photo_match, [photo, sentence, photo_checkpoint], photo_outputs, api_name=False)
        photo_step.change(handlers.overlay_at, [photo_view, photo_step, gr.State(0)], photo_overlay, api_name=False, show_progress="hidden")
        search_btn.click(handlers.search, [query, photo_checkpoint], ranked, api_name="search")
        compare_btn.click(handlers.compare, [image, question], [compare_table, compare_gallery], api_name="compare")
        # API-only endpoint: the prediction as JSON, without rendering heatmaps or overlays.
        answer_json = gr.JSON(visible=False)
        answer_btn = gr.Button(visible=False)
        answer_btn.click(handlers.answer, [image, question, checkpoint], answer_json, api_name="answer")
    return demo


def launch_kwargs(drain: Drain | None = None) -> dict[str, Any]:
    """Local by default (127.0.0.1:7860; GRADIO_SERVER_NAME/PORT override); never a share link; request bodies
    capped (mmdemo.serving) and, with a drain, counted for a graceful SIGTERM."""
    middleware = [Middleware(GuardMiddleware, drain=drain or Drain())]
    return {"share": False, "max_file_size": MAX_UPLOAD, "show_error": False, "app_kwargs": {"middleware": middleware}}


def pending_events(demo: gr.Blocks) -> int:
    """Events gradio has accepted and not yet delivered (queued, running or being sent back)."""
    pending = getattr(getattr(demo, "_queue", None), "pending_event_ids_session", {})
    return sum(len(ids) for ids in list(pending.values()))


if __name__ == "__main__":
    demo = build_demo(Predictor.load())
    # Requests run in threads sharing one read-only model; 4 at once keeps 2-core latency sane.
    demo.queue(default_concurrency_limit=4, max_size=64, api_open=False)
    drain = Drain()
    demo.launch(**launch_kwargs(drain), prevent_thread_lock=True)
    # SIGTERM: no new requests, the accepted ones finish (bounded), one log line, exit 0.
    raise SystemExit(serve_until_stopped(drain, lambda: pending_events(demo), lambda: demo.close(verbose=False)))
