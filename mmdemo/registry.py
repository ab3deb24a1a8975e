"""Checkpoints the app can offer: found on disk, described by their metrics, loaded once each."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mmdemo.checkpoint import DEFAULT, DEFAULT_PHOTOS, ROOT, CheckpointError, find_checkpoints, read_config, read_metrics
from mmdemo.inference import Predictor


class Registry:
    """Lazily loads and caches one Predictor per checkpoint folder (shared by all requests)."""

    def __init__(self, root: Path = ROOT, device: str = "auto", preload: Predictor | None = None) -> None:
        self.root, self.device = Path(root), device
        self._cache: dict[Path, Predictor] = {}
        self._lock = threading.Lock()
        if preload is not None:
            self._cache[preload.folder.resolve()] = preload

    def folders(self, task: str | None = None) -> list[Path]:
        """Checkpoint folders (the defaults first); with task, only those trained for it."""
        found = [f for f in find_checkpoints(self.root) if task is None or self.task(f) == task]
        defaults = [(self.root / d.relative_to(ROOT)).resolve() for d in (DEFAULT, DEFAULT_PHOTOS)]
        return sorted(found, key=lambda p: (p.resolve() not in defaults, str(p)))

    @staticmethod
    def model_field(folder: Path, name: str, default: Any) -> Any:
        """One field of a checkpoint's model config (default when the config leaves it out); None if unreadable."""
        try:
            return read_config(folder)["model"].get(name, default)
        except (CheckpointError, KeyError, TypeError, AttributeError):
            return None

    def task(self, folder: Path) -> str | None:
        """'sort-of-clevr', 'match', 'classify', ... from config.json; None if unreadable."""
        return self.model_field(folder, "task", "sort-of-clevr")

    def name(self, folder: Path) -> str:
        try:
            return str(folder.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(folder)

    def question_input(self, folder: Path) -> str | None:
        """'text' (typed questions) or 'audio' (spoken questions) from config.json; None if unreadable."""
        return self.model_field(folder, "question_input", "text")

    def reads_ahead(self, folder: Path) -> bool:
        """True for models whose every step already knows the whole sentence (config causal false)."""
        return self.model_field(folder, "causal", True) is False

    def label(self, folder: Path) -> str:
        """'sort-of-clevr/default: 98.5% overall': the measured accuracy beside each name, and "reads ahead"
        for models whose steps see the whole sentence (their per-step attention does not show reading)."""
        m = read_metrics(folder)
        name = self.name(folder) + (" (reads the whole question first)" if self.reads_ahead(folder) else "")
        if self.task(folder) == "match":  # photo matchers: what is measured on photos, or that it is not
            from mmdemo.tasks.matching.calibrate import CALIBRATION, calibration_for

            params = calibration_for(folder) if CALIBRATION.is_file() else None
            if params is not None:
                return f"{name}: calibrated, {100 * params['test']['accuracy']:.1f}% right on held-out photos"
            return name + (f": uncalibrated, {100 * m['accuracy']:.1f}% right on held-out clip art" if m and m.get("accuracy") is not None else "")
        if m and m.get("overall") is not None:
            return f"{name}: {100 * m['overall']:.1f}% overall"
        if m and m.get("accuracy") is not None:
            return f"{name}: {100 * m['accuracy']:.1f}% val accuracy"
        return name

    def choices(self, task: str | None = None, question_input: str = "text") -> list[tuple[str, str]]:
        """(label, name) for the checkpoints of a task that take typed (text) or spoken (audio) questions."""
        return [(self.label(f), self.name(f)) for f in self.folders(task) if self.question_input(f) == question_input]

    def default(self, task: str = "sort-of-clevr") -> Path:
        """The shipped default folder for a task under this root: what no checkpoint name means."""
        return self.root / (DEFAULT_PHOTOS if task == "match" else DEFAULT).relative_to(ROOT)

    def get(self, name: str | None) -> Predictor:
        """The Predictor for a checkpoint name; None or "" means the shipped default (never the first folder found)."""
        folder = (self.root / name) if name else self.default()
        key = folder.resolve()
        with self._lock:
            if key not in self._cache:
                self._cache[key] = Predictor.load(folder, device=self.device)
            return self._cache[key]
