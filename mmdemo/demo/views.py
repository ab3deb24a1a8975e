"""What playback and scrubbing show at one step: the overlay, the token strip, the object trace (and the slider).

A View is computed once per answer; every step shown afterwards only reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmdemo import plots
from mmdemo.config import ModelConfig
from mmdemo.inference import Prediction
from mmdemo.plots import hop_name, is_uniform, object_trace, overlay, token_strip
from mmdemo.tasks.sort_of_clevr import data as soc
from mmdemo.tasks.sort_of_clevr.reading import colour_token_step, object_mass, question_roles, top_regions


@dataclass
class Trace:
    """The object trace's lines: attention mass per step, hop and line, and how each line is drawn."""

    mass: np.ndarray  # (T, K, O): per step, hop and object (or region)
    names: list[str]
    colours: list[str]
    roles: list[str]  # "named", "answer" or ""
    title: str


@dataclass
class View:
    """Everything the step views need for one answer."""

    hops: np.ndarray  # (T, K, R) attention per step, hop and region
    tokens: list[str]
    grid: tuple[int, int]
    pixels: np.ndarray  # (H, W, 3) uint8: the exact pixels the model saw
    colour_step: int  # the step that has read the colour word; -1: none
    step: int  # the step shown first (the colour word, else the most peaked)
    step_attention: list[float]
    uniform: bool  # a fusion without attention: every map is even
    trace: Trace | None  # None: no trace (the Photos tab)
    labels: list[str] | None = None  # the strip's chip labels (spoken: words or times); None: the tokens
    shown: tuple[int, int] | None = field(default=None)  # (step, hop) on screen now


@dataclass
class Slider:
    """The step slider as an answer sets it."""

    maximum: int
    value: int
    label: str


@dataclass
class Frame:
    """The step views at one step and hop; None everywhere when there is no answer yet."""

    overlay: np.ndarray | None
    strip: str | None
    trace: dict | None  # a plotly figure spec; None: no trace


def build_view(pred: Prediction, pixels: np.ndarray, cfg: ModelConfig, scene: soc.Scene | None, question: str,
               colour_step: int | None = None) -> View:
    """The View of an answer; scene: the generated scene (objects traced) or None (the most-looked-at regions traced).
    colour_step: the step that has read the colour word (default: found among the tokens; -1 = none)."""
    hops = np.asarray(pred.hop_attention, dtype=np.float32)  # (T, K, R)
    if colour_step is None:
        colour_step = colour_token_step(pred.tokens) if cfg.task == "sort-of-clevr" else -1
    first = colour_step if colour_step >= 0 else int(np.argmax(hops[:, 0].max(1)))
    grid = tuple(pred.grid)
    if scene is not None:
        roles = question_roles(scene, question)
        objects = list(scene.objects)
        mass = object_mass(hops, objects, grid[0])  # (T, K, O)
        suffix = {"named": " (named)", "answer": " (answer)"}
        parsed = soc.parse_question(question)
        if parsed and parsed[0] == "count":
            suffix["answer"] = " (counted)"
        trace = Trace(mass, [f"{o.colour} {o.shape}{suffix.get(roles.get(o.colour, ''), '')}" for o in objects],
                      [plots.OBJECT_LINE[o.colour] for o in objects], [roles.get(o.colour, "") for o in objects],
                      "What each object gets, step by step")
    else:
        regions = top_regions(hops, 4)
        trace = Trace(hops[:, :, regions], [f"region ({r // grid[1]}, {r % grid[1]})" for r in regions],  # (T, K, n)
                      list(plots.REGION_LINE[: len(regions)]), [""] * len(regions), "The most-looked-at regions, step by step")
    uniform = is_uniform(hops[first, 0]) and not cfg.has_region_attention
    return View(hops, pred.tokens, grid, pixels, colour_step, first, pred.step_attention, uniform, trace, shown=(first, 0))


def maps_title(view: View, title: str) -> str:
    """The step maps' title; a fusion without attention says its maps are uniform."""
    return "No attention: uniform maps (pooled image)" if view.uniform else title


def slider(view: View, label: str) -> Slider:
    """The step slider for a new answer: every step of it, at the step shown first."""
    return Slider(max(0, view.hops.shape[0] - 1), view.step, label)


def frame(view: View | None, step: float, hop: float) -> Frame:
    """Overlay, token strip and object trace at one step and hop: what playback and scrubbing move together."""
    if not view:
        return Frame(None, None, None)
    step = int(np.clip(step, 0, view.hops.shape[0] - 1))
    hop = int(np.clip(hop, 0, view.hops.shape[1] - 1))
    note = hop_name(hop) + (": no attention, uniform" if view.uniform else "")
    strip = token_strip(view.tokens, view.step_attention, step, view.colour_step, note, labels=view.labels)
    trace = None
    if view.trace is not None:
        t = view.trace
        trace = object_trace(t.mass, view.tokens, t.names, t.colours, t.roles, view.colour_step, step, t.title)
    return Frame(overlay(view.pixels, view.hops[step, hop], view.grid), strip, trace)


def show_step(view: View | None, step: float, hop: float) -> Frame | None:
    """Scrubbing, playback and the hop choice; None when that step is on screen already. What is on screen is not
    sent again: the answer set it, and rewriting a picture's cache file while the browser reads it cuts the download."""
    if view and view.shown == (int(step), int(hop)):
        return None
    if view:
        view.shown = (int(step), int(hop))  # the session's own state object
    return frame(view, step, hop)


@dataclass
class Playback:
    """Where playback is: playing or not, and the step to show (None: leave the slider where it is)."""

    playing: bool
    step: int | None


def toggle_play(playing: bool, view: View | None) -> Playback:
    """Play from the first step, or pause."""
    if playing or not view:
        return Playback(False, None)
    return Playback(True, 0)


def advance(step: float, view: View | None) -> Playback:
    """One tick while playing: the next step; at the last step playback stops."""
    if not view:
        return Playback(False, None)
    last = view.hops.shape[0] - 1
    nxt = min(int(step) + 1, last)
    return Playback(nxt < last, nxt)
