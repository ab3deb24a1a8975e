"""Gradio app (built out in the app issue). Importing this module has no side effects."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr
from PIL import Image

from mmdemo.inference import InputError, Predictor


class SafeImage(gr.Image):
    """gr.Image whose upload step turns unreadable files into a clear message instead of a traceback."""

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise gr.Error(f"Not a readable image ({type(e).__name__}).", print_exception=False) from None


def build_demo(predictor: Predictor) -> gr.Blocks:
    """A minimal ask-and-answer page over one predictor."""

    def ask(image, question: str) -> tuple[str, dict[str, float]]:
        try:
            pred = predictor.predict(image, question)
        except InputError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return pred.answer, pred.probs

    with gr.Blocks(title="mmdemo") as demo:
        gr.Markdown("# mmdemo: where does the RNN look?")
        with gr.Row():
            image = SafeImage(type="filepath", image_mode=None, label="Image")
            with gr.Column():
                question = gr.Textbox(label="Question", value="What shape is the red object?")
                button = gr.Button("Ask", variant="primary")
                answer = gr.Textbox(label="Answer")
                probs = gr.Label(label="Probabilities")
        button.click(ask, [image, question], [answer, probs], api_name="predict")
    return demo


if __name__ == "__main__":
    demo = build_demo(Predictor.load())
    demo.queue(default_concurrency_limit=4).launch()
