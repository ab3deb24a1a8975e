"""The Gradio pieces app.py lays out: components that turn bad input into a clear message, and the event wrapper that
shows a room's InputError. The one module besides app.py that imports gradio (the rooms in mmdemo.demo do not)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData
from PIL import Image

from mmdemo.demo.scenes import SEED_RULE
from mmdemo.errors import InputError


class SafeImage(gr.Image):
    """gr.Image whose upload step turns unreadable files into a clear message instead of a traceback."""

    is_template = True  # render with gradio's own Image frontend, not as a custom component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise gr.Error(f"Not a readable image ({type(e).__name__}).", print_exception=False) from None


class SpecPlot(gr.Plot):
    """gr.Plot sending a figure spec (a dict from mmdemo.plots) as it is: a plotly Figure costs more than the model."""

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


def error(message: str) -> gr.Error:
    return gr.Error(message.translate(_PLAIN), print_exception=False)


def shown(fn: Callable) -> Callable:
    """An event function whose InputError (input a person can fix) reaches the page and the client as a message."""

    @functools.wraps(fn)
    def event(*args: Any) -> Any:
        try:
            return fn(*args)
        except InputError as e:
            raise error(str(e)) from None

    return event


def slider_update(s: Any) -> dict:  # a views.Slider
    return gr.update(minimum=0, maximum=s.maximum, value=s.value, label=s.label)
