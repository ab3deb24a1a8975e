"""Pictures of attention: numpy in, plotly figures, RGB arrays or small HTML out. Imports neither gradio nor torch.

Shapes: T steps (one per token), K hops, R = h * w regions (row-major), O objects.
Figures are plotly figure specs as plain dicts ({"data": [...], "layout": {...}}, JSON-ready: gaps are None):
the app makes them on every request and sends them as JSON, and building a `go.Figure` (validation and
deep copies of every property) costs more than the model's forward pass. `figure(spec)` gives the object.
"""

from __future__ import annotations

import html
import math

import numpy as np

# Transparent-to-magenta: stands out against the spec's six object colours and white.
LOOKED = 0.5  # overlay: a region weighted at least this share of the strongest counts as looked at (kept, outlined)
FADE = 0.8  # overlay: how far the least-weighted regions fade towards white
OUTLINE = (20, 20, 20)  # overlay: the outline of the looked-at area (no scene colour is this dark)
_MAGENTA_SCALE = [[0.0, "#ececec"], [0.02, "#f3e0ee"], [1.0, "#d600aa"]]  # 0: light gray, so every cell shows
HOP_NAMES = ("hop 1 (find)", "hop 2 (relate)")
UNIFORM_TOL = 1e-4  # weights (they sum to 1) this close to each other: no attention at all (sum / concat)
# Line colours for the objects: the spec's colours, yellow and gray darkened enough to read on white.
OBJECT_LINE = {"red": "#e00000", "green": "#00b000", "blue": "#0000ff", "orange": "#ff9c00", "gray": "#707070", "yellow": "#c8b400"}
REGION_LINE = ("#1f3a93", "#8e44ad", "#16a085", "#d35400", "#2c3e50", "#7f8c8d")  # uploaded images: top regions


def figure(spec: dict):  # -> plotly.graph_objects.Figure
    """A plotly Figure from one of the specs below (for notebooks and tests; the app sends the dict)."""
    import plotly.graph_objects as go

    return go.Figure(spec)


def hop_name(k: int) -> str:
    return HOP_NAMES[k] if k < len(HOP_NAMES) else f"hop {k + 1}"


def is_uniform(weights: np.ndarray) -> bool:
    """True when region weights are (almost) the same everywhere: the model did not look anywhere."""
    w = np.asarray(weights, dtype=np.float64)
    return bool(w.size) and float(w.max() - w.min()) <= UNIFORM_TOL


def overlay(image: np.ndarray, weights: np.ndarray, grid: tuple[int, int], scale: int | None = None) -> np.ndarray:
    """The image (nearest-neighbour, upscaled; by default to about 300 px) with one step's region weights shown
    without changing any colour where the model looks: (H*scale, W*scale, 3) uint8.

    Regions weighted at least LOOKED of the strongest keep their pixels exactly and get a dark outline; the others
    fade towards white (the weaker, the paler), so the looked-at objects keep their true colours. Uniform weights
    (no attention, or waiting evenly) leave the image as it is. Grid lines let a person count regions."""
    img = np.asarray(image, dtype=np.uint8)
    h, w = grid
    H, W = img.shape[:2]
    scale = scale or max(1, round(300 / W))
    out = img
    looked = np.ones((h, w), dtype=bool)
    if not is_uniform(weights):
        heat = np.asarray(weights, dtype=np.float32).reshape(h, w)
        heat = heat / max(float(heat.max()), 1e-8)
        looked = heat >= LOOKED
        fade = FADE * np.clip(1.0 - heat / LOOKED, 0.0, 1.0)  # 0 where it looks, up to FADE where it does not
        alpha = fade[np.minimum(np.arange(H) * h // H, h - 1)][:, np.minimum(np.arange(W) * w // W, w - 1)][..., None]  # (H, W, 1)
        out = np.clip(img * (1 - alpha) + 255.0 * alpha + 0.5, 0, 255).astype(np.uint8)
    big = out.repeat(scale, axis=0).repeat(scale, axis=1)  # nearest neighbour: the pixels stay sharp
    rows = [round(i * H / h) * scale for i in range(h + 1)]
    cols = [round(j * W / w) * scale for j in range(w + 1)]
    for r in rows[1:-1]:
        big[r, :, :] = 170
    for c in cols[1:-1]:
        big[:, c, :] = 170
    if not looked.all():  # outline the looked-at area: every edge between a looked-at region and anything else
        t = max(2, (3 * scale) // 4)
        for i in range(h):
            for j in range(w):
                if not looked[i, j]:
                    continue
                y0, y1, x0, x1 = rows[i], rows[i + 1], cols[j], cols[j + 1]
                if i == 0 or not looked[i - 1, j]:
                    big[y0 : y0 + t, x0:x1] = OUTLINE
                if i == h - 1 or not looked[i + 1, j]:
                    big[y1 - t : y1, x0:x1] = OUTLINE
                if j == 0 or not looked[i, j - 1]:
                    big[y0:y1, x0 : x0 + t] = OUTLINE
                if j == w - 1 or not looked[i, j + 1]:
                    big[y0:y1, x1 - t : x1] = OUTLINE
    return big


def hop_maps(hops: np.ndarray, tokens: list[str], grid: tuple[int, int], colour_step: int = -1, title: str = "") -> dict:
    """Small multiples: one h x w map per step (columns, labelled with the tokens) and per hop (rows).

    One heatmap trace with blank gaps between the maps (one trace draws fast); the colour word's column is boxed."""
    att = np.asarray(hops, dtype=np.float64)  # (T, K, R)
    t_steps, k_hops, _ = att.shape
    h, w = grid
    rows, cols = k_hops * (h + 1) - 1, t_steps * (w + 1) - 1
    z = np.full((rows, cols), np.nan)
    text = np.full((rows, cols), "", dtype=object)
    escaped = [html.escape(tok) for tok in tokens]
    for k in range(k_hops):
        for t in range(t_steps):
            r0, c0 = k * (h + 1), t * (w + 1)
            z[r0 : r0 + h, c0 : c0 + w] = att[t, k].reshape(h, w)
            for r in range(h):
                for c in range(w):
                    text[r0 + r, c0 + c] = f"step {t} '{escaped[t]}', hop {k + 1}, region ({r}, {c})"
    col_centres = [t * (w + 1) + (w - 1) / 2 for t in range(t_steps)]
    labels = list(escaped)
    shapes, annotations = [], []
    if 0 <= colour_step < t_steps:
        labels[colour_step] = f"<b>{labels[colour_step]}</b>"
        x0 = colour_step * (w + 1) - 0.5
        shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": x0 - 0.35, "x1": x0 + w + 0.35, "y0": -0.85, "y1": rows - 0.15,
                       "line": {"color": "#222", "width": 2}, "fillcolor": "rgba(0,0,0,0)"})
        annotations.append({"x": x0 + w / 2, "y": -0.9, "xref": "x", "yref": "y", "text": "colour word", "showarrow": False, "yanchor": "bottom", "font": {"size": 11}})
    cell = float(np.clip(1100 / cols, 8, 28))  # px per cell at a desktop width (maps are square: scaleanchor)
    heat = {"type": "heatmap", "z": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in z], "text": text.tolist(),
            "hovertemplate": "%{text}<br>weight %{z:.3f}<extra></extra>", "colorscale": _MAGENTA_SCALE, "zmin": 0.0, "zmax": max(float(np.nanmax(att)), 1e-6),
            "xgap": 1, "ygap": 1, "colorbar": {"title": {"text": "weight"}, "thickness": 12}}
    return {
        "data": [heat],
        "layout": {
            "title": {"text": html.escape(title), "font": {"size": 14}, "x": 0.01, "xanchor": "left"},  # left: seen first when it scrolls
            "height": int((84 if title else 54) + 80 + cell * (rows + 1)),
            "margin": {"l": 110, "r": 10, "t": 84 if title else 54, "b": 80},
            "xaxis": {"tickvals": col_centres, "ticktext": labels, "tickangle": -45, "showgrid": False, "zeroline": False, "constrain": "domain"},
            "yaxis": {"tickvals": [k * (h + 1) + (h - 1) / 2 for k in range(k_hops)], "ticktext": [hop_name(k) for k in range(k_hops)],
                      "autorange": "reversed", "scaleanchor": "x", "scaleratio": 1, "showgrid": False, "zeroline": False, "constrain": "domain"},
            "plot_bgcolor": "#ffffff",
            "shapes": shapes,
            "annotations": annotations,
        },
    }


MAX_TICKS = 24  # step labels on the object trace's time axis


def object_trace(
    mass: np.ndarray, tokens: list[str], names: list[str], colours: list[str], roles: list[str],
    colour_step: int = -1, step: int | None = None, title: str = "",
) -> dict:
    """Per step, the attention mass on each object (or region): one line each, one panel per hop.

    mass (T, K, O); names/colours/roles per line (role "named" or "answer" draws a thick line, "answer"
    dashed); a dotted line marks the colour word, a solid one the step shown (the playback marker)."""
    m = np.asarray(mass, dtype=np.float64)
    t_steps, k_hops, n_lines = m.shape
    gap = 0.16  # panels are stacked (hop 1 above hop 2): readable at a phone's width too
    height = (1 - gap * (k_hops - 1)) / k_hops
    steps = list(range(t_steps))
    every = math.ceil(t_steps / MAX_TICKS)  # many steps (a spoken question): label every n-th and the colour word's
    ticks = steps[::every]
    if every > 1 and 0 <= colour_step < t_steps:  # the colour word's step labelled, its neighbours' labels dropped
        ticks = sorted({*(t for t in ticks if abs(t - colour_step) > every // 2), colour_step})
    dense = every > 1
    data, layout, annotations = [], {}, []
    for k in range(k_hops):
        ax = "" if k == 0 else str(k + 1)
        for o in range(n_lines):
            role = roles[o]
            data.append({
                "type": "scatter", "x": steps, "y": m[:, k, o].round(4).tolist(), "xaxis": f"x{ax}", "yaxis": f"y{ax}",
                "mode": "lines" if dense else "lines+markers", "name": html.escape(names[o]), "legendgroup": str(o), "showlegend": k == 0,
                "line": {"color": colours[o], "width": 4 if role else 1.5, "dash": "dash" if role == "answer" else "solid"},
                "marker": {"size": 7 if role else 4, "color": colours[o]},
                "hovertemplate": f"{html.escape(names[o])}<br>step %{{x}}: %{{y:.2f}}<extra>{hop_name(k)}</extra>",
            })
        y1 = 1 - k * (height + gap)
        layout[f"xaxis{ax}"] = {"tickvals": ticks, "ticktext": [html.escape(tokens[t]) for t in ticks], "tickangle": -45,
                                "range": [-0.5, t_steps - 0.5], "anchor": f"y{ax}", "automargin": True}
        annotations.append({"text": f"<b>{hop_name(k)}</b>", "x": 0, "y": y1, "xref": "paper", "yref": "paper",
                            "showarrow": False, "xanchor": "left", "yanchor": "bottom"})
        layout[f"yaxis{ax}"] = {"domain": [y1 - height, y1], "range": [0, 1.05], "anchor": f"x{ax}", "title": {"text": "mass"}}
    shapes = []
    for k in range(k_hops):
        ax = "" if k == 0 else str(k + 1)
        if 0 <= colour_step < t_steps:
            shapes.append({"type": "line", "xref": f"x{ax}", "yref": f"y{ax}", "x0": colour_step, "x1": colour_step, "y0": 0, "y1": 1.05,
                           "line": {"color": "#555", "width": 1, "dash": "dot"}})
        if step is not None and 0 <= step < t_steps:
            shapes.append({"type": "line", "xref": f"x{ax}", "yref": f"y{ax}", "x0": step, "x1": step, "y0": 0, "y1": 1.05,
                           "line": {"color": "#d600aa", "width": 3}, "name": "step"})
    layout.update({
        "title": {"text": html.escape(title), "font": {"size": 13}, "x": 0.01, "xanchor": "left"},
        "height": 260 * k_hops + 90,
        "margin": {"l": 50, "r": 10, "t": 60 if title else 30, "b": 20},
        "legend": {"orientation": "h", "y": -0.12, "x": 0, "yanchor": "top"},
        "shapes": shapes,
        "annotations": annotations,
        "plot_bgcolor": "#ffffff",
        "meta": {"step": step, "colour_step": colour_step},
    })
    return {"data": data, "layout": layout}


def token_strip(tokens: list[str], step_attention: list[float], step: int, colour_step: int = -1, note: str = "",
                labels: list[str] | None = None) -> str:
    """HTML: the tokens in reading order, shaded by how much each step counts for the answer; the step shown is
    boxed (data-step says which), the colour word underlined. Everything from the input is escaped.

    labels: what each chip shows instead of its token (the token stays its title); an empty label draws a
    narrow chip, so a spoken question's 40 ms steps read as a time line with the words at their ends."""
    weights = np.asarray(step_attention, dtype=np.float64)
    top = max(float(weights.max()), 1e-8) if len(weights) else 1.0
    spans = []
    for t, tok in enumerate(tokens):
        alpha = 0.08 + 0.6 * float(weights[t]) / top if t < len(weights) else 0.08
        shown = tok if labels is None else labels[t]
        box = "padding:2px 5px;margin:2px;" if shown else "padding:2px 0;margin:2px 1px;min-width:7px;min-height:1.3em;vertical-align:middle;"
        style = f"background:rgba(214,0,170,{alpha:.2f});{box}border-radius:4px;display:inline-block;"
        style += "outline:3px solid #111;font-weight:700;" if t == step else "outline:1px solid transparent;"
        style += "text-decoration:underline;text-decoration-thickness:2px;" if t == colour_step else ""
        classes = "tok" + (" now" if t == step else "") + (" colour" if t == colour_step else "")
        spans.append(f'<span class="{classes}" data-t="{t}" title="{html.escape(tok)}" style="{style}">{html.escape(shown)}</span>')
    caption = f"step {step} of {len(tokens) - 1}: <b>{html.escape(tokens[step])}</b>" if 0 <= step < len(tokens) else ""
    if step == colour_step >= 0:
        caption += " (the colour word)"
    caption += f" &middot; {html.escape(note)}" if note else ""
    return (f'<div class="token-strip" data-step="{step}" style="line-height:2.1;font-family:monospace">'
            f'<div style="font-family:sans-serif;font-size:0.9em;margin-bottom:2px">{caption}</div>{"".join(spans)}</div>')


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
) -> go.Figure:  # noqa: F821 (plotly is imported where it is used, as in figure())
    """Waveform and spectrogram of a spoken question against time in seconds; with a prediction, below them
    hop 1's attention over the image regions at every step (each column where a step ends), on the same
    time axis. words: (text, start, end) triples (speech.Word) marked as spans, e.g. for a synthesized question."""
    import plotly.graph_objects as go
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
