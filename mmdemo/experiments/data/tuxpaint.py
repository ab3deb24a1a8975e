"""Captioned pictures from Debian's Tux Paint stamps (tuxpaint-stamps-default, GPL-2), for the photo model.

About 1,000 stamps, drawings and photo cut-outs, each with an English caption in <name>.txt ("A rocket.").
A stamp is <name>.png or, when there is no PNG, <name>.svg (rasterised with rsvg-convert). Each becomes
rows {"image", "text", "group"} with its caption ("a rocket"; file names are too cryptic to add as
captions: "pen_dryerase"); the group is the Open Clip Art category that its top folder corresponds to, so
that negatives from "other groups" mean the same thing across both sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SOURCE = Path("/usr/share/tuxpaint/stamps")
PACKAGES = ("tuxpaint-stamps-default", "librsvg2-bin")
# Tux Paint top folder -> Open Clip Art category.
GROUPS = {
    "animals": "animals", "cartoon": "special", "clothes": "people", "food": "food", "hobbies": "recreation",
    "household": "tools", "medical": "science", "military": "special", "naturalforces": "geography",
    "people": "people", "plants": "plants", "seasonal": "decorations", "space": "science", "sports": "recreation",
    "symbols": "signs_and_symbols", "town": "buildings", "vehicles": "transportation",
}


def caption(path: Path) -> str | None:
    """The English caption (first line of <name>.txt) as a short lower-case phrase; None if missing."""
    try:
        first = path.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    text = " ".join(first.split()).strip().rstrip(".!").lower()
    return text if text and "=" not in text else None


def stamps(source: Path = SOURCE) -> Iterator[tuple[Path, Path, str]]:
    """(picture file, caption file, group) for every stamp with an English caption; PNG before SVG."""
    for txt in sorted(source.rglob("*.txt")):
        picture = next((p for p in (txt.with_suffix(".png"), txt.with_suffix(".svg")) if p.is_file()), None)
        group = GROUPS.get(txt.relative_to(source).parts[0])
        if picture is not None and group is not None:
            yield picture, txt, group


def check_available(source: Path = SOURCE) -> list[tuple[Path, Path, str]]:
    """The stamps, or SystemExit naming what to install (no stamps, or SVG stamps and no rsvg-convert)."""
    found = list(stamps(source))
    if not found:
        raise SystemExit(f"no Tux Paint stamps under {source}: apt-get install {' '.join(PACKAGES)} (or --install)")
    if any(p.suffix == ".svg" for p, _, _ in found) and shutil.which("rsvg-convert") is None:
        raise SystemExit("rsvg-convert is needed for the SVG stamps: apt-get install librsvg2-bin (or --install)")
    return found


@contextmanager
def rasterised(svg: Path, side: int = 448) -> Iterator[Path]:
    """An SVG stamp as a temporary PNG (rsvg-convert keeps the aspect ratio inside side x side), removed after."""
    fd, name = tempfile.mkstemp(suffix=".png")
    os.close(fd)
    out = Path(name)
    try:
        subprocess.run(["rsvg-convert", "-w", str(side), "-h", str(side), "--keep-aspect-ratio", "-o", name, str(svg)],
                       check=True, capture_output=True, timeout=60)
        yield out
    finally:
        out.unlink(missing_ok=True)


def texts(txt: Path) -> list[str]:
    """The stamp's caption as a list of rows' texts (empty when it has none)."""
    own = caption(txt)
    return [own] if own else []
