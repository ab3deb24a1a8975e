"""Build an image-text manifest from Debian's public-domain Open Clip Art packages.

    python -m mmdemo.experiments.data.openclipart --out data/openclipart [--install]

Reads /usr/share/openclipart/png/<category>/.../<name>.png and the matching .svg, whose RDF metadata holds
a title and keywords. Each usable image is padded to a square, resized to 224 px and written under
OUT/images/; OUT/manifest.jsonl gets three rows per image: {"image", "text", "group"} where text is
"<title>, <keywords>", "a <title>" or "a <first keyword>" (short captions, as people type them), and group
is the top-level category (used to draw negatives from other categories).
Images that are unreadable, too large (decompression bombs) or have no title are skipped and counted.
--tuxpaint also adds Debian's Tux Paint stamps (~1,000 captioned drawings and photo cut-outs, GPL-2; see
mmdemo/experiments/data/tuxpaint.py) under OUT/images/tuxpaint/.
--gcompris adds the ~250 captioned photos of Debian's gcompris-qt-data (see mmdemo/experiments/data/gcompris.py) under
OUT/images/gcompris/, each row with "repeat": --gcompris-repeat (default 5) so that the few photos weigh
more in training.
--install runs `apt-get install -y --no-install-recommends openclipart-png openclipart-svg` first (and the Tux Paint stamps and
librsvg2-bin (rsvg-convert) with --tuxpaint, gcompris-qt-data with --gcompris; needs root and network).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import IO

from tqdm import tqdm

SOURCE = Path("/usr/share/openclipart")
GENERIC = {"unsorted", "clip art", "clipart", "image", "media", "png", "svg", "public domain", "externalsource", "openclipart"}


def short_texts(text: str) -> list[str]:
    """Short captions like people type ("a cat"): 'a <title>' and 'a <first keyword>'."""
    title, *words = [w.strip() for w in text.split(",")]
    out = [f"a {title.lower()}"]
    if words and words[0] != title.lower():
        out.append(f"a {words[0]}")
    return out


def svg_text(path: Path) -> str | None:
    """'<title>, <keyword>, ...' from an Open Clip Art SVG's RDF metadata; None if there is no title."""
    try:
        with path.open("rb") as f:
            head = f.read(200_000).decode("utf-8", errors="replace")  # the metadata block comes first
    except OSError:
        return None
    work = re.search(r"<cc:Work\b.*?</cc:Work>", head, re.DOTALL)
    if work is None:
        return None
    title_match = re.search(r"<dc:title>(.*?)</dc:title>", work.group(0), re.DOTALL)
    title = html.unescape(" ".join(re.sub(r"[_\-]+", " ", title_match.group(1)).split())) if title_match else ""
    if not title or "<" in title:
        return None
    words: list[str] = []
    subject = re.search(r"<dc:subject>(.*?)</dc:subject>", work.group(0), re.DOTALL)
    for li in re.findall(r"<rdf:li>(.*?)</rdf:li>", subject.group(1) if subject else "", re.DOTALL):
        w = html.unescape(" ".join(li.split())).strip().lower()
        if w and w not in GENERIC and w not in words and w != title.lower() and "<" not in w:
            words.append(w)
    return ", ".join([title, *words[:8]])


def build(
    out: Path, source: Path = SOURCE, size: int = 224, tuxpaint: Path | None = None, gcompris: Path | None = None, gcompris_repeat: int = 1
) -> dict[str, int]:
    """Write OUT/images/ and OUT/manifest.jsonl. tuxpaint: the Tux Paint stamps folder to add, or None for
    none; gcompris: the GCompris .rcc folder whose photos to add, or None for none, each photo row with
    "repeat": gcompris_repeat (the CLI's default is 5)."""
    from PIL import Image

    from mmdemo.inference import InputError, load_image, prepare_image

    pngs = sorted((source / "png").rglob("*.png"))
    if not pngs:
        raise SystemExit(f"no PNGs under {source / 'png'}: install the packages (--install, or apt-get install openclipart-png openclipart-svg)")
    (out / "images").mkdir(parents=True, exist_ok=True)
    counts = {"written": 0, "no_metadata": 0, "duplicate": 0, "unreadable": 0}
    seen_names: set[str] = set()
    seen_text: set[tuple[str, str]] = set()
    with (out / "manifest.jsonl").open("w") as f:
        for png in tqdm(pngs, desc="openclipart", unit="img"):
            rel = png.relative_to(source / "png")
            group = rel.parts[0]
            if png.name in seen_names:  # the packages file some pictures under several folders
                counts["duplicate"] += 1
                continue
            text = svg_text((source / "svg" / rel).with_suffix(".svg"))
            if text is None:
                counts["no_metadata"] += 1
                continue
            if (group, text) in seen_text:
                counts["duplicate"] += 1
                continue
            try:
                pixels = prepare_image(load_image(png), size)
            except InputError:
                counts["unreadable"] += 1
                continue
            seen_names.add(png.name)
            seen_text.add((group, text))
            target = Path("images") / rel
            (out / target).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(out / target, optimize=False)
            for caption in [text, *short_texts(text)]:
                f.write(json.dumps({"image": str(target), "text": caption, "group": group}) + "\n")
            counts["written"] += 1
        if tuxpaint is not None:
            counts.update(add_tuxpaint(f, out, tuxpaint, size))
        if gcompris is not None:
            from mmdemo.experiments.data import gcompris as gc

            added = gc.write_rows(f, out, gc.check_available(gcompris), size, folder="images/gcompris", repeat=gcompris_repeat)
            counts.update({f"gcompris_{k}": v for k, v in added.items()})
    return counts


def add_tuxpaint(f: IO[str], out: Path, stamps_folder: Path, size: int) -> dict[str, int]:
    """Append the Tux Paint stamps' rows to the open manifest f; their pictures go under OUT/images/tuxpaint/."""
    from PIL import Image

    from mmdemo.experiments.data import tuxpaint as tp
    from mmdemo.inference import InputError, load_image, prepare_image

    found = tp.check_available(stamps_folder)
    counts = {"tuxpaint_written": 0, "tuxpaint_no_caption": 0, "tuxpaint_unreadable": 0}
    for picture, txt, group in tqdm(found, desc="tuxpaint", unit="img"):
        captions = tp.texts(txt)
        if not captions:
            counts["tuxpaint_no_caption"] += 1
            continue
        try:
            if picture.suffix == ".svg":
                with tp.rasterised(picture) as png:
                    pixels = prepare_image(load_image(png), size)
            else:
                pixels = prepare_image(load_image(picture), size)
        except (InputError, subprocess.SubprocessError):
            counts["tuxpaint_unreadable"] += 1
            continue
        target = Path("images") / "tuxpaint" / picture.relative_to(stamps_folder).with_suffix(".png")
        (out / target).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(out / target, optimize=False)
        for text in captions:
            f.write(json.dumps({"image": str(target), "text": text, "group": group}) + "\n")
        counts["tuxpaint_written"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.data.openclipart", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (images/ and manifest.jsonl)")
    parser.add_argument("--install", action="store_true", help="apt-get install the Debian packages first (Open Clip Art; with --tuxpaint also the stamps and librsvg2-bin)")
    parser.add_argument("--tuxpaint", action="store_true", help="also add the Tux Paint stamps (tuxpaint-stamps-default)")
    parser.add_argument("--gcompris", action="store_true", help="also add the GCompris photos (gcompris-qt-data; mmdemo/experiments/data/gcompris.py)")
    parser.add_argument("--gcompris-repeat", type=int, default=5, help="with --gcompris: times each photo row counts per training epoch (default %(default)s)")
    parser.add_argument("--source", default=str(SOURCE), help="where the packages put their files (default %(default)s)")
    args = parser.parse_args(argv)
    from mmdemo.experiments.data import gcompris as gc
    from mmdemo.experiments.data import tuxpaint as tp
    from mmdemo.tasks.matching.manifest import MAX_REPEAT

    if not 1 <= args.gcompris_repeat <= MAX_REPEAT:
        parser.error(f"--gcompris-repeat must be from 1 to {MAX_REPEAT}")
    if args.install:
        extra = (list(tp.PACKAGES) if args.tuxpaint else []) + (list(gc.PACKAGES) if args.gcompris else [])
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openclipart-png", "openclipart-svg", *extra], check=True)
    if args.tuxpaint:
        tp.check_available(tp.SOURCE)  # before the long Open Clip Art pass
    if args.gcompris:
        gc.check_available(gc.SOURCE)
    counts = build(
        Path(args.out), Path(args.source), tuxpaint=tp.SOURCE if args.tuxpaint else None,
        gcompris=gc.SOURCE if args.gcompris else None, gcompris_repeat=args.gcompris_repeat,
    )
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
