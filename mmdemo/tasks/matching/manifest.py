"""Your own data: a CSV or JSONL manifest of (image, text[, label]) rows, validated before any training.

Columns: `image` (a path relative to the manifest's folder), `text`, and for `--task classify` a `label`.
An optional `group` column (e.g. a category) lets `--task match` draw its negatives from other groups, and
an optional `repeat` (a whole number, default 1) counts a row that many times per training epoch (to
oversample a small source; validation counts every row once).
Every bad row is named (missing file, unreadable image, empty text, unknown or too-rare label); the split
into train and validation is a pure function of each row's image name (all rows of one image stay together).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mmdemo.limits import MAX_TEXT_CHARS
from mmdemo.text import clean_text

TASKS = ("classify", "match")
MATCH_LABELS = ("match", "mismatch")
MAX_REPEAT = 100


class ManifestError(ValueError):
    """The manifest cannot be used as it is; the message names every bad row."""


@dataclass(frozen=True)
class Row:
    line: int  # 1-based row number as a person counts it (CSV: header is line 1)
    image: Path  # resolved path
    text: str  # cleaned
    label: str | None
    group: str | None
    repeat: int = 1  # times per training epoch


def _records(path: Path) -> list[tuple[int, dict]]:
    """(line, record) pairs; utf-8 with or without a byte-order mark; a bad line is a ManifestError."""
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            return _jsonl_records(path)
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                if not reader.fieldnames or "image" not in reader.fieldnames or "text" not in reader.fieldnames:
                    raise ManifestError(f"{path.name}: the header must name the columns image and text (got {reader.fieldnames})")
                out: list[tuple[int, dict]] = []
                try:
                    for rec in reader:
                        out.append((len(out) + 2, rec))
                except csv.Error as e:  # e.g. a field over csv.field_size_limit()
                    raise ManifestError(f"{path.name} row {len(out) + 2}: {e}") from None
                return out
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path.name}: not UTF-8 text (byte {e.start})") from None
    raise ManifestError(f"{path.name}: a manifest must be .csv or .jsonl")


def _jsonl_records(path: Path) -> list[tuple[int, dict]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path.name} line {n}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise ManifestError(f"{path.name} line {n}: not valid JSON (nested too deeply)") from None
        if not isinstance(rec, dict):
            raise ManifestError(f"{path.name} line {n}: each line must be a JSON object")
        out.append((n, rec))
    return out


def read_manifest(
    path: str | Path, task: str, labels: tuple[str, ...] | None = None, min_per_label: int = 2, check_images: bool = True
) -> list[Row]:
    """Validated rows; raises ManifestError naming each bad row (up to 20, then a count)."""
    from mmdemo.errors import InputError
    from mmdemo.processing import load_image

    path = Path(path)
    if task not in TASKS:
        raise ManifestError(f"task must be one of {TASKS}, got {task!r}")
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    problems: list[str] = []
    rows: list[Row] = []
    for n, rec in _records(path):
        where = f"row {n}"
        image_field = str(rec.get("image") or "").strip()
        text = clean_text(rec.get("text") or "")
        label = str(rec.get("label") or "").strip() or None
        group = str(rec.get("group") or "").strip() or None
        bad = []
        repeat = rec.get("repeat")
        repeat = 1 if repeat is None or repeat == "" else repeat
        try:
            value = float(str(repeat).strip())  # 3, "3" and 3.0 are all three
            if not value.is_integer() or not 1 <= value <= MAX_REPEAT:
                raise ValueError
            repeat = int(value)
        except ValueError:
            bad.append(f"repeat must be a whole number from 1 to {MAX_REPEAT}, got {rec.get('repeat')!r}")
        image = (path.parent / image_field).resolve() if image_field else None
        if image is None:
            bad.append("no image path")
        elif not image.is_file():
            bad.append(f"image not found: {image_field}")
        elif check_images:
            try:
                load_image(image)
            except InputError as e:
                bad.append(f"unreadable image {image_field}: {e}")
        if not text:
            bad.append("empty text")
        elif len(str(rec.get("text"))) > MAX_TEXT_CHARS:
            bad.append(f"text over {MAX_TEXT_CHARS:,} characters")
        if task == "classify":
            if label is None:
                bad.append("no label")
            elif labels is not None and label not in labels:
                bad.append(f"unknown label {label!r} (allowed: {', '.join(labels)})")
        if bad:
            problems.append(f"{where}: {'; '.join(bad)}")
        else:
            rows.append(Row(n, image, text, label, group, repeat))  # type: ignore[arg-type]
    if task == "classify":
        counts = Counter(r.label for r in rows)
        rare = {lab for lab, c in counts.items() if c < min_per_label}
        problems += [f"row {r.line}: label {r.label!r} is too rare ({counts[r.label]} row(s); need {min_per_label})" for r in rows if r.label in rare]
        if not problems and len(counts) < 2:
            problems.append("classify needs at least two different labels")
    elif not problems and len({r.image for r in rows}) < 2:
        problems.append("match needs at least two different images")
    if not rows and not problems:
        problems.append("the manifest has no rows")
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ManifestError(f"{path.name}: {len(problems)} bad row(s): {shown}")
    return rows


def split_rows(rows: list[Row], val_fraction: float = 0.1) -> tuple[list[Row], list[Row]]:
    """Deterministic train/validation split by a hash of each row's image file name: all rows of one
    image fall on the same side, so no picture is both trained on and validated on."""
    def bucket(r: Row) -> float:
        digest = hashlib.sha1(r.image.name.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    train = [r for r in rows if bucket(r) >= val_fraction]
    val = [r for r in rows if bucket(r) < val_fraction]
    if not val or not train:  # tiny manifests: keep at least one image on each side
        first = rows[0].image
        train, val = [r for r in rows if r.image != first] or rows, [r for r in rows if r.image == first]
    return train, val
