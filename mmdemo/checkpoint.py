"""Checkpoint folders: model.safetensors + config.json (+ metrics.json). No pickle; strict loading."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mmdemo.config import ModelConfig
from mmdemo.limits import MAX_JSON_BYTES
from mmdemo.model import FusionRNN

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
FORMAT = "mmdemo-checkpoint/1"
ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT = ROOT / "sort-of-clevr" / "default"  # the one place that names the default checkpoint
DEFAULT_PHOTOS = ROOT / "photos" / "match"  # ... and the default photo (image-text matching) checkpoint


class CheckpointError(ValueError):
    """A folder that is not a loadable mmdemo checkpoint; the message says why."""


def save_checkpoint(model: FusionRNN, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write weights and config; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
    config = {"format": FORMAT, "model": model.cfg.to_dict(), **(extra or {})}
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    path = folder / CONFIG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder} is not a checkpoint: it needs {CONFIG} and {WEIGHTS}")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise CheckpointError(f"{path} is over {MAX_JSON_BYTES // 2**20} MB: not an mmdemo checkpoint config")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{path} is not valid JSON: nested too deeply") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an mmdemo checkpoint config (format must be {FORMAT!r})")
    return config


def describe_mismatch(model: torch.nn.Module, state: dict[str, torch.Tensor] | dict[str, tuple[int, ...]]) -> list[str]:
    """Human-readable differences between a model's parameters and a state dict (tensors or their shapes)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v) for k, v in state.items()}
    problems = [f"missing weight {k}" for k in expected if k not in found]
    problems += [f"unexpected weight {k}" for k in found if k not in expected]
    problems += [
        f"{k}: checkpoint has shape {found[k]}, config expects {v}"
        for k, v in expected.items()
        if k in found and found[k] != v
    ]
    return problems


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape from a safetensors header, without reading any weight."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - safe_open is not iterable
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from None


def load_checkpoint(folder: str | Path | None = None, device: torch.device | str = "cpu") -> tuple[FusionRNN, dict[str, Any]]:
    """Rebuild the model from config.json and load its weights strictly; returns (model in eval mode, config)."""
    folder = Path(folder) if folder is not None else DEFAULT
    config = read_config(folder)
    try:
        cfg = ModelConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG}: bad model config: {e}") from None
    # Compare the header's shapes with a model built on the meta device (no memory) before allocating anything:
    # a config.json that asks for a huge model is refused for the price of reading a header.
    with torch.device("meta"):
        skeleton = FusionRNN(cfg)
    problems = describe_mismatch(skeleton, weight_shapes(folder / WEIGHTS))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(f"{folder}: weights do not match config.json: {shown}")
    try:
        state = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{folder / WEIGHTS} is not a readable safetensors file: {e}") from None
    model = FusionRNN(cfg)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), config


IMAGE_FIELDS = ("image_encoder", "image_size", "image_channels", "grid")


def image_encoder_source(folder: str | Path, cfg: ModelConfig) -> FusionRNN:
    """The checkpoint in folder, loaded to start a new model's image encoder from (copy_image_encoder); its
    config must agree with cfg on the image encoder (IMAGE_FIELDS). Checked before a run spends anything."""
    source, _ = load_checkpoint(folder)
    differ = [f"{f} {getattr(source.cfg, f)} != {getattr(cfg, f)}" for f in IMAGE_FIELDS if getattr(source.cfg, f) != getattr(cfg, f)]
    if differ:
        raise CheckpointError(f"{folder}: its image encoder differs from this model's: {'; '.join(differ)} (init_image '' trains it from scratch)")
    return source


def copy_image_encoder(model: FusionRNN, source: FusionRNN) -> None:
    """model's image encoder := source's (weights and batch-norm statistics); nothing else in model changes."""
    model.image.load_state_dict(source.image.state_dict(), strict=True)


def read_metrics(folder: str | Path) -> dict[str, Any] | None:
    """metrics.json as a dict; None when it is missing, too large or not a JSON object."""
    path = Path(folder) / METRICS
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return metrics if isinstance(metrics, dict) else None


def _finite(value: Any) -> Any:
    """NaN and infinities (an undefined metric, e.g. AUC with one class) -> None, all the way down."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_metrics(folder: str | Path, metrics: dict[str, Any]) -> Path:
    """Write metrics.json as strict JSON (an undefined metric is null, never NaN); returns its path. The measures other
    commands recorded there (KEPT_MEASURES) are kept unless metrics brings its own."""
    path = Path(folder) / METRICS
    old = read_metrics(folder) or {}
    metrics = {**{k: old[k] for k in KEPT_MEASURES if k in old}, **metrics}
    path.write_text(json.dumps(_finite(metrics), indent=2, allow_nan=False) + "\n")
    return path


KEPT_MEASURES = ("heldout_wording", "bench", "faithfulness", "conditions", "offtask")  # metrics.json keys written by other commands than `evaluate --write`


def record_measure(folder: str | Path, key: str, value: Any) -> Path:
    """Set one measure (KEPT_MEASURES) in metrics.json, keeping everything else there: how `evaluate --wording
    heldout --write` and `bench --write` put their figures beside the test-split ones, for the app and the docs."""
    if key not in KEPT_MEASURES:
        raise ValueError(f"{key!r} is not a recorded measure ({', '.join(KEPT_MEASURES)})")
    return write_metrics(folder, {**(read_metrics(Path(folder)) or {}), key: value})


def find_checkpoints(root: str | Path = ROOT) -> list[Path]:
    """Every checkpoint folder under root, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(CONFIG) if (p.parent / WEIGHTS).is_file())
