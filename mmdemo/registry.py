"""Checkpoints the app can offer: found on disk, described by their metrics, loaded once each."""

from __future__ import annotations

import threading
from pathlib import Path

from mmdemo.checkpoint import DEFAULT, ROOT, find_checkpoints, read_metrics
from mmdemo.inference import Predictor


class Registry:
    """Lazily loads and caches one Predictor per checkpoint folder (shared by all requests)."""

    def __init__(self, root: Path = ROOT, device: str = "auto", preload: Predictor | None = None) -> None:
        self.root, self.device = Path(root), device
        self._cache: dict[Path, Predictor] = {}
        self._lock = threading.Lock()
        if preload is not None:
            self._cache[preload.folder.resolve()] = preload

    def folders(self) -> list[Path]:
        found = find_checkpoints(self.root)
        default = (self.root / DEFAULT.relative_to(ROOT)).resolve()
        return sorted(found, key=lambda p: (p.resolve() != default, str(p)))

    def name(self, folder: Path) -> str:
        try:
            return str(folder.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(folder)

    def label(self, folder: Path) -> str:
        """'sort-of-clevr/default: 63.4% overall': the measured accuracy beside each name."""
        m = read_metrics(folder)
        if m and m.get("overall") is not None:
            return f"{self.name(folder)}: {100 * m['overall']:.1f}% overall"
        return self.name(folder)

    def choices(self) -> list[tuple[str, str]]:
        return [(self.label(f), self.name(f)) for f in self.folders()]

    def get(self, name: str | None) -> Predictor:
        folder = (self.root / name) if name else next(iter(self.folders()), self.root / DEFAULT.relative_to(ROOT))
        key = folder.resolve()
        with self._lock:
            if key not in self._cache:
                self._cache[key] = Predictor.load(folder, device=self.device)
            return self._cache[key]
