"""Captioned photos from Debian's gcompris-qt-data, the only photo-domain pictures with names that ship offline.

GCompris (an educational suite) packs each activity's files into a Qt resource file (.rcc) under
/usr/share/gcompris-qt/rcc/. Five activities hold real photos, almost all from Wikimedia Commons, each
credited in a README beside it (author, licence: public domain, CC0, CC-BY or CC-BY-SA, and source URL):
categorization (tools, fishes, monuments, windmills and dams, household things), explore_monuments,
explore_world_animals, explore_farm_animals and erase (animals); about 250 photos. Each photo becomes up to
two rows: "a <its file name as words>" ("leaningTowerOfPisa3.webp" -> "a leaning tower of pisa") and the
title of its Wikimedia Commons file ("Saltwater Crocodile on a river bank"), under the Open Clip Art category
its folder corresponds to (so that negatives from "other groups" mean the same thing across sources).

    python -m mmdemo.experiments.data.gcompris --out data/gcompris [--install]

writes OUT/images/<activity>/.../<name>.png (224 px, padded square) and OUT/manifest.jsonl with rows
{"image", "text", "group", "license", "source"}. The shipped photo models are not trained on them: they
measure how models trained on clip art carry over to photos (`python -m mmdemo.experiments.photo_grid evaluate --photos`).
(Adding them to the training manifest, with a repeat count, was tried, not shipped, and pruned: docs/EXPERIMENTS.md.)
--install runs `apt-get install -y --no-install-recommends gcompris-qt-data` first (needs root and network;
without --no-install-recommends apt would add the GCompris application and ~60 packages).
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import subprocess
import sys
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SOURCE = Path("/usr/share/gcompris-qt/rcc")
PACKAGES = ("gcompris-qt-data",)
# (rcc file, folder inside it whose photos are taken) -> Open Clip Art category.
FOLDERS = {
    ("categorization", "images/tools"): "tools",
    ("categorization", "images/fishes"): "animals",
    ("categorization", "images/monuments"): "buildings",
    ("categorization", "images/renewable"): "geography",
    ("categorization", "images/others"): "unsorted",
    ("explore_monuments", "resource"): "buildings",
    ("explore_world_animals", "resource/animals"): "animals",
    ("explore_farm_animals", "resource/animals"): "animals",
    ("erase", "resource"): "animals",
}
# File names that do not read as a caption on their own.
NAMES = {"solar": "solar panels", "buffetset": "buffet set", "blackslate": "blackboard", "le musee": "louvre museum"}


class RccError(ValueError):
    """Not a Qt resource file this reader understands."""


def read_rcc(path: Path) -> dict[str, bytes]:
    """Every file in a Qt resource (.rcc, format 1-3) as {path inside it: bytes}; zlib entries are inflated,
    zstd entries are left out (this reader does not decode zstd). RccError if it is not one or is damaged."""
    b = path.read_bytes()
    if b[:4] != b"qres" or len(b) < 20:
        raise RccError(f"{path}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    if version not in (1, 2, 3):
        raise RccError(f"{path}: resource format {version} is not supported")
    try:
        return _read_tree(b, version, tree, data, names, path)
    except (struct.error, zlib.error, UnicodeDecodeError) as e:
        raise RccError(f"{path}: damaged Qt resource file ({e})") from None


def _read_tree(b: bytes, version: int, tree: int, data: int, names: int, path: Path) -> dict[str, bytes]:
    entry = 14 if version == 1 else 22  # format 2 added an 8-byte modification time to each node

    def name(offset: int) -> str:
        (n,) = struct.unpack(">H", b[names + offset : names + offset + 2])
        return b[names + offset + 6 : names + offset + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}
    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        off = tree + index * entry
        name_off, flags = struct.unpack(">IH", b[off : off + 6])
        here = prefix + (name(name_off) if index else "")
        if flags & 2:  # directory: its children are consecutive nodes
            count, first = struct.unpack(">II", b[off + 6 : off + 14])
            stack.extend((child, here + "/") for child in range(first, first + count))
            continue
        (data_off,) = struct.unpack(">I", b[off + 10 : off + 14])
        (size,) = struct.unpack(">I", b[data + data_off : data + data_off + 4])
        raw = b[data + data_off + 4 : data + data_off + 4 + size]
        if flags & 4:  # zstd (Qt 6 builds): not read; a photo or credit file missing for this reason is skipped
            continue
        out[here.lstrip("/")] = zlib.decompress(raw[4:]) if flags & 1 else raw
    return out


def name_caption(file_name: str) -> str | None:
    """'leaningTowerOfPisa3.webp' -> 'a leaning tower of pisa', 'owl.webp' -> 'an owl'; plurals ('spoons') get no
    article (a rough rule: 'rhinoceros' gets none either); None when the name has no letters ('3.webp')."""
    stem = re.sub(r"\d+$", "", file_name.rsplit(".", 1)[0])
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", stem).replace("_", " ").replace("-", " ").lower()
    words = NAMES.get(" ".join(words.split()), " ".join(words.split()))
    if not words:
        return None
    if words.endswith("s") and not words.endswith("ss"):
        return words
    return f"{'an' if words[:1] in 'aeiou' else 'a'} {words}"


def title_caption(url: str) -> str | None:
    """A Wikimedia Commons file URL -> its title as a caption, without numbers and catalogue codes."""
    if "/File:" not in url:
        return None
    title = urllib.parse.unquote(url.split("/File:", 1)[1]).rsplit(".", 1)[0].replace("_", " ")
    title = re.sub(r"\([^)]*\)", " ", title)  # "(cropped)", "(5)"
    words = [w for w in re.split(r"[\s,]+", title) if w and not re.search(r"\d", w) and w not in "-–"]
    text = " ".join(words).strip(" -").lower()
    return text or None


def readme_credits(readme: str) -> dict[str, tuple[str, str]]:
    """{file as named: (source URL, licence)} from a GCompris README (blocks of Copyright / License / Source / Files)."""
    out: dict[str, tuple[str, str]] = {}
    for block in re.split(r"\n\s*\n", readme):
        source = re.search(r"^Source:\s*(\S+)", block, re.MULTILINE)
        licence = re.search(r"^License:\s*(.+)$", block, re.MULTILINE)
        # names on the same line or the lines after, up to the next "Key:" line; spaces or commas between them
        files = re.search(r"^Files:(.*?)(?=^[A-Z][A-Za-z]*:|\Z)", block, re.MULTILINE | re.DOTALL)
        if source and files:
            for f in re.split(r"[\s,]+", files.group(1)):
                if "." in f:
                    out[f] = (source.group(1), licence.group(1).strip() if licence else "")
    return out


@dataclass(frozen=True)
class Photo:
    key: str  # "<rcc>/<folder's last part>/<file as its README names it>": unique, the output path
    data: bytes  # the encoded picture (WebP)
    texts: tuple[str, ...]  # its rows' texts
    group: str
    source: str  # where the photo comes from (a Wikimedia Commons file page)
    licence: str


def photos(source: Path = SOURCE) -> Iterator[Photo]:
    """The captioned photos of the activities in FOLDERS (skips files without a credit in their README)."""
    by_rcc: dict[str, list[tuple[str, str]]] = {}
    for (rcc, folder), group in FOLDERS.items():
        by_rcc.setdefault(rcc, []).append((folder, group))
    for rcc, folders in sorted(by_rcc.items()):
        path = source / f"{rcc}.rcc"
        if not path.is_file():
            continue
        files = read_rcc(path)
        for folder, group in folders:
            root = next((k[: -len("/README")] for k in files if k == f"{folder}/README" or k.endswith(f"/{folder}/README")), None)
            if root is None:
                continue
            inside = {k: v for k, v in files.items() if k.startswith(root + "/")}  # subfolders too
            readme = files[f"{root}/README"].decode("utf-8", "replace")
            credits = readme_credits(readme)
            for key in sorted(k for k in inside if k.endswith(".webp")):
                rel = key[len(root) + 1 :]  # as the README names it: "alpaca.webp", "wonders/colosseum.webp"
                file_name = rel.rsplit("/", 1)[-1]
                if rel not in credits:
                    continue
                url, licence = credits[rel]
                own = name_caption(file_name)
                title = title_caption(url)
                texts = [t for t in (own, title) if t]
                if own and title and title in {own, own.removeprefix("a ")}:
                    texts = [own]  # the title only repeats the name (kept as built for the README's runs: an "an ..."
                    # name keeps its title, e.g. "an eiffel tower" and "eiffel tower")
                if not texts:
                    continue
                yield Photo(f"{rcc}/{folder.rsplit('/', 1)[-1]}/{rel}", inside[key], tuple(texts), group, url, licence)


def check_available(source: Path = SOURCE) -> list[Photo]:
    """The photos, or SystemExit naming what to install (or which resource file is damaged)."""
    try:
        found = list(photos(source))
    except RccError as e:
        raise SystemExit(str(e)) from None
    if not found:
        raise SystemExit(f"no GCompris photos under {source}: apt-get install {' '.join(PACKAGES)} (or --install)")
    return found


def build(out: Path, source: Path = SOURCE, size: int = 224) -> dict[str, int]:
    """Write OUT/images/ and OUT/manifest.jsonl; returns counts (written, unreadable, rows)."""
    found = check_available(source)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "manifest.jsonl").open("w") as f:
        return write_rows(f, out, found, size)


def write_rows(f: IO[str], out: Path, found: list[Photo], size: int = 224) -> dict[str, int]:
    """Write each photo (224 px PNG) under OUT/images/ and its rows to the open manifest f."""
    from PIL import Image

    from mmdemo.errors import InputError
    from mmdemo.processing import load_image, prepare_image

    counts = {"written": 0, "unreadable": 0, "rows": 0}
    for photo in found:
        try:
            pixels = prepare_image(load_image(photo.data), size)
        except InputError:
            counts["unreadable"] += 1
            continue
        target = Path("images") / Path(photo.key).with_suffix(".png")
        (out / target).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(out / target, optimize=False)
        for text in photo.texts:
            row = {"image": str(target), "text": text, "group": photo.group, "license": photo.licence, "source": photo.source}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts["rows"] += 1
        counts["written"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.data.gcompris", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (images/ and manifest.jsonl)")
    parser.add_argument("--install", action="store_true", help=f"apt-get install {' '.join(PACKAGES)} first")
    parser.add_argument("--source", default=str(SOURCE), help="folder of GCompris's .rcc files (default %(default)s)")
    args = parser.parse_args(argv)
    if args.install:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES], check=True)
    print(json.dumps(build(Path(args.out), Path(args.source))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
