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


# ------------------------------------------------------------------------------------ spoken questions


def waveform_envelope(samples: np.ndarray, sample_rate: int, points: int = 1500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, low, high): the min and max of each of `points` stretches, so a long recording plots quickly."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if not len(x):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    per = max(1, int(np.ceil(len(x) / points)))
    padded = np.pad(x, (0, (-len(x)) % per), mode="edge").reshape(-1, per)  # (P, per)
    times = (np.arange(len(padded)) + 0.5) * per / sample_rate
    return times, padded.min(1), padded.max(1)


def spectrogram_db(samples: np.ndarray, sample_rate: int, window_ms: int = 25, hop_ms: int = 10, max_hz: float = 8000.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times (F,), freqs (K,), power in dB (K, F)) of a Hann-window STFT, for display (the model reads log-mel)."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    win, hop = max(2, sample_rate * window_ms // 1000), max(1, sample_rate * hop_ms // 1000)
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop] * np.hanning(win).astype(np.float32)  # (F, win)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (F, K)
    freqs = np.fft.rfftfreq(win, 1.0 / sample_rate)
    keep = freqs <= max_hz
    db = 10 * np.log10(power[:, keep].T + 1e-10)  # (K, F)
    times = (np.arange(len(frames)) * hop + win) / sample_rate  # each column at its window's end
    return times, freqs[keep], db


def step_at_time(step_times: list[float], seconds: float) -> int:
    """The step that has heard the recording up to `seconds` (for scrubbing a time slider through the steps)."""
    times = np.asarray(step_times, dtype=np.float64)
    if not len(times):
        return 0
    return int(min(np.searchsorted(times, seconds - 1e-9), len(times) - 1))


def spoken_figure(
    samples: np.ndarray,
    sample_rate: int,
    step_times: list[float] | None = None,
    region_attention: np.ndarray | None = None,
    grid: tuple[int, int] | None = None,
    words: list | None = None,
    title: str = "",
) -> go.Figure:
    """Waveform and spectrogram of a spoken question against time in seconds; with a prediction, below them
    hop 1's attention over the image regions at every step (each column where a step ends), on the same
    time axis. words: (text, start, end) triples (speech.Word) marked as spans, e.g. for a synthesized question."""
    from plotly.subplots import make_subplots

    attention = region_attention is not None and step_times is not None and grid is not None
    rows = 3 if attention else 2
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.25, 0.35, 0.4][:rows])
    times, low, high = waveform_envelope(samples, sample_rate)
    fig.add_trace(go.Scatter(x=np.concatenate([times, times[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself", mode="lines",
                             line={"width": 0.5, "color": "#444"}, hoverinfo="skip", name="waveform"), row=1, col=1)
    s_times, freqs, db = spectrogram_db(samples, sample_rate)
    top = float(db.max()) if db.size else 0.0
    fig.add_trace(go.Heatmap(x=s_times, y=freqs, z=db, zmin=top - 80, zmax=top, colorscale="Viridis", showscale=False,
                             hovertemplate="%{x:.2f} s<br>%{y:.0f} Hz<br>%{z:.0f} dB<extra></extra>", name="spectrogram"), row=2, col=1)
    if attention:
        att = np.asarray(region_attention, dtype=np.float64)  # (T, R)
        ends = np.asarray(step_times, dtype=np.float64)  # (T,)
        centres = ends - (ends[0] if len(ends) else 0.0) / 2  # each column spans the stretch its step read
        h, w = grid
        fig.add_trace(go.Heatmap(x=centres, y=[f"r{r // w},{r % w}" for r in range(h * w)], z=att.T, colorscale="Magma",
                                 zmin=0.0, zmax=max(float(att.max()), 1e-6), colorbar={"title": {"text": "weight"}, "len": 0.4, "y": 0.2},
                                 hovertemplate="around %{x:.2f} s<br>region %{y}<br>weight %{z:.3f}<extra></extra>", name="attention"), row=3, col=1)
        fig.update_yaxes(title={"text": "region"}, type="category", autorange="reversed", row=3, col=1)
    shapes, labels = [], []
    for word in words or []:  # one dotted line per word start through every row, the word above the waveform
        text, start, end = word[0], float(word[1]), float(word[2])
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": start, "x1": start, "y0": 0, "y1": 1,
                       "line": {"width": 1, "dash": "dot", "color": "#999"}})
        labels.append({"x": (start + end) / 2, "xref": "x", "y": 1.0, "yref": "paper", "yanchor": "bottom",
                       "text": html.escape(str(text)), "showarrow": False, "font": {"size": 10}})
    fig.update_yaxes(title={"text": "amplitude"}, row=1, col=1)
    fig.update_yaxes(title={"text": "Hz"}, row=2, col=1)
    fig.update_xaxes(title={"text": "time (s)"}, row=rows, col=1)
    fig.update_layout(title={"text": html.escape(title)}, height=220 * rows + 60, showlegend=False, shapes=shapes, annotations=labels,
                      margin={"l": 10, "r": 10, "t": 60 if title else 30, "b": 10})
    return fig
