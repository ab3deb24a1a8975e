"""Pictures of attention: numpy in, plotly figures or RGB arrays out. Imports neither gradio nor torch."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from PIL import Image

# Transparent-to-magenta: stands out against the spec's six object colours and white.
_OVERLAY_RGB = np.array([214, 0, 170], dtype=np.float32)


def token_labels(tokens: list[str]) -> list[str]:
    """Unique, HTML-escaped labels for a heatmap axis (plotly renders some HTML in labels)."""
    return [f"{t}: {html.escape(tok)}" for t, tok in enumerate(tokens)]


def attention_heatmap(region_attention: np.ndarray, tokens: list[str], grid: tuple[int, int], title: str = "") -> go.Figure:
    """Tokens x regions heatmap; hover shows the step, token, region (row, col) and weight."""
    att = np.asarray(region_attention, dtype=np.float64)  # (T, R)
    h, w = grid
    regions = [f"r{r // w},{r % w}" for r in range(h * w)]
    fig = go.Figure(
        go.Heatmap(
            z=att,
            x=regions,
            y=token_labels(tokens),
            colorscale="Magma",
            zmin=0.0,
            zmax=max(float(att.max()), 1e-6),
            hovertemplate="step %{y}<br>region %{x}<br>weight %{z:.3f}<extra></extra>",
            colorbar={"title": {"text": "weight"}},
        )
    )
    fig.update_layout(
        title={"text": html.escape(title)},
        height=max(260, 22 * len(tokens) + 120),
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        xaxis={"title": {"text": "image region (row, col)"}, "tickangle": -60},
        yaxis={"autorange": "reversed", "type": "category"},
    )
    return fig


def overlay(image: np.ndarray, weights: np.ndarray, grid: tuple[int, int], scale: int = 4) -> np.ndarray:
    """The image (upscaled) with one step's region weights as a tint; (H*scale, W*scale, 3) uint8."""
    img = np.asarray(image, dtype=np.uint8)
    h, w = grid
    big = np.asarray(Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.Resampling.NEAREST), dtype=np.float32)
    heat = np.asarray(weights, dtype=np.float32).reshape(h, w)
    heat = heat / max(float(heat.max()), 1e-8)  # strongest region fully tinted
    heat_img = np.asarray(Image.fromarray((heat * 255).astype(np.uint8)).resize((big.shape[1], big.shape[0]), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    alpha = 0.65 * heat_img[..., None]
    out = big * (1 - alpha) + _OVERLAY_RGB * alpha
    # Grid lines so a person can count regions.
    for i in range(1, h):
        out[round(i * big.shape[0] / h), :, :] = 200
    for j in range(1, w):
        out[:, round(j * big.shape[1] / w), :] = 200
    return np.clip(out, 0, 255).astype(np.uint8)


def step_highlights(tokens: list[str], step_attention: list[float]) -> list[tuple[str, float]]:
    """(token, weight scaled to [0, 1]) pairs for a highlighted-text view of attention over steps."""
    weights = np.asarray(step_attention, dtype=np.float64)
    top = max(float(weights.max()), 1e-8) if len(weights) else 1.0
    return [(tok, round(float(a) / top, 3)) for tok, a in zip(tokens, weights)]
