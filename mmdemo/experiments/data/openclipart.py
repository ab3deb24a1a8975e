"""Build an image-text manifest from Debian's public-domain Open Clip Art packages.

    python -m mmdemo.experiments.data.openclipart --out data/openclipart [--install]

Reads /usr/share/openclipart/png/<category>/.../<name>.png and the matching .svg, whose RDF metadata holds
a title and keywords. Each usable image is padded to a square, resized to 224 px and written under
OUT/images/; OUT/manifest.jsonl gets three rows per image: {"image", "text", "group"} where text is
"<title>, <keywords>", "a <title>" or "a <first keyword>" (short captions, as people type them), and group
is the top-level category (used to draw negatives from other categories).
Images that are unreadable, too large (decompression bombs) or have no title are skipped and counted.
--install runs `apt-get install -y --no-install-recommends openclipart-png openclipart-svg` first (needs root and network).
(Adding the Tux Paint stamps or the GCompris photos to this manifest was tried, not shipped, and pruned:
docs/EXPERIMENTS.md.)
"""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import sys
from pathlib import Path

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


def build(out: Path, source: Path = SOURCE, size: int = 224) -> dict[str, int]:
    """Write OUT/images/ and OUT/manifest.jsonl; returns what was written and skipped, by reason."""
    from PIL import Image

    from mmdemo.errors import InputError
    from mmdemo.processing import load_image, prepare_image

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
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.data.openclipart", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (images/ and manifest.jsonl)")
    parser.add_argument("--install", action="store_true", help="apt-get install the Debian packages first (openclipart-png, openclipart-svg)")
    parser.add_argument("--source", default=str(SOURCE), help="where the packages put their files (default %(default)s)")
    args = parser.parse_args(argv)
    if args.install:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openclipart-png", "openclipart-svg"], check=True)
    counts = build(Path(args.out), Path(args.source))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
