"""The photo model's data builders, on small fake copies of the Debian package trees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mmdemo.experiments.data import openclipart
from mmdemo.tasks.matching.manifest import read_manifest

SVG = """<svg xmlns="http://www.w3.org/2000/svg"><metadata><rdf:RDF><cc:Work rdf:about="">
<dc:title>red_sports-car</dc:title><dc:subject><rdf:Bag><rdf:li>Car</rdf:li><rdf:li>clipart</rdf:li>
<rdf:li>vehicle</rdf:li></rdf:Bag></dc:subject></cc:Work></rdf:RDF></metadata></svg>"""


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype=np.uint8)).save(path)


def _openclipart_tree(root: Path) -> Path:
    _png(root / "png" / "transportation" / "car.png", (200, 0, 0))
    (root / "svg" / "transportation").mkdir(parents=True)
    (root / "svg" / "transportation" / "car.svg").write_text(SVG)
    _png(root / "png" / "animals" / "nometa.png", (0, 200, 0))  # no SVG: skipped, counted
    return root


def test_openclipart_metadata_and_short_captions(tmp_path) -> None:
    path = tmp_path / "car.svg"
    path.write_text(SVG)
    assert openclipart.svg_text(path) == "red sports car, car, vehicle"  # generic keywords dropped
    assert openclipart.short_texts("red sports car, car, vehicle") == ["a red sports car", "a car"]
    path.write_text("<svg></svg>")
    assert openclipart.svg_text(path) is None


def test_build_writes_a_manifest_that_validates(tmp_path) -> None:
    source = _openclipart_tree(tmp_path / "openclipart")
    _png(source / "png" / "animals" / "cat.png", (250, 250, 250), size=(30, 40))
    (source / "svg" / "animals").mkdir(parents=True)
    (source / "svg" / "animals" / "cat.svg").write_text(SVG.replace("red_sports-car", "white cat").replace("Car", "kitten"))
    out = tmp_path / "out"
    counts = openclipart.build(out, source, size=32)
    assert counts["written"] == 2 and counts["no_metadata"] == 1
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == [
        "white cat, kitten, vehicle", "a white cat", "a kitten", "red sports car, car, vehicle", "a red sports car", "a car"
    ]
    assert {r["group"] for r in rows} == {"transportation", "animals"}
    for r in rows:  # every picture is written square at the asked size
        assert Image.open(out / r["image"]).size == (32, 32)
    assert len(read_manifest(out / "manifest.jsonl", task="match")) == 6  # the training code accepts it


def _rcc(path: Path, files: dict[str, bytes], compress: set[str] = frozenset(), version: int = 3, zstd: set[str] = frozenset()) -> None:
    """Write a Qt resource file holding `files`, as Qt's rcc tool lays it out (format 1: 14-byte nodes, no
    modification time; 2 and 3: 22 bytes). Names in `compress` are zlib-packed; names in `zstd` are only
    flagged as zstd (their bytes stay raw: the reader must leave them out without decoding)."""
    import struct
    import zlib

    tree: dict = {}
    for name, data in files.items():
        node = tree
        *dirs, leaf = name.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = data
    names, data_blob, nodes = bytearray(), bytearray(), []
    stamp = b"" if version == 1 else b"\0" * 8

    def name_offset(name: str) -> int:
        off = len(names)
        names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return off

    def add_dir(children: dict, index: int) -> None:  # children of node `index` go in consecutive slots
        first = len(nodes)
        items = sorted(children.items())
        nodes.extend([None] * len(items))
        nodes[index] = nodes[index][:6] + struct.pack(">II", len(items), first) + stamp
        for k, (name, value) in enumerate(items):
            if isinstance(value, dict):
                nodes[first + k] = struct.pack(">IH", name_offset(name), 2)
                add_dir(value, first + k)
            else:
                packed = struct.pack(">I", len(value)) + zlib.compress(value) if name in compress else value
                flags = 1 if name in compress else 4 if name in zstd else 0
                nodes[first + k] = struct.pack(">IHHHI", name_offset(name), flags, 0, 0, len(data_blob)) + stamp
                data_blob.extend(struct.pack(">I", len(packed)) + packed)

    nodes.append(struct.pack(">IH", 0, 2))
    add_dir(tree, 0)
    tree_blob = b"".join(nodes)
    head = struct.pack(">IIII", version, 0, 0, 0) + (b"\0" * 4 if version >= 3 else b"")  # format 3 adds a flags word
    start = 4 + len(head)
    head = struct.pack(">IIII", version, start, start + len(tree_blob), start + len(tree_blob) + len(data_blob)) + head[16:]
    path.write_bytes(b"qres" + head + tree_blob + data_blob + names)


README = """Copyright: Someone
License: CC0-1.0
Source: https://commons.wikimedia.org/wiki/File:Saltwater_Crocodile_on_a_river_bank_(cropped).jpg
Files:
crocodile.webp

Copyright: Someone else
License: CC-BY-SA 4.0
Files: meerkats.webp, 2.webp
Source: https://commons.wikimedia.org/wiki/File:Meerkat_tswalu.jpg

Copyright: Nobody
License: CC0-1.0
Files:
uncredited.webp
"""


def _webp(colour: tuple[int, int, int]) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((30, 50, 3), colour, dtype=np.uint8)).save(buf, format="WEBP")
    return buf.getvalue()


def test_gcompris_reads_qt_resources_credits_and_captions(tmp_path) -> None:
    from mmdemo.experiments.data import gcompris

    base = "gcompris/src/activities/explore_world_animals/resource/animals"
    files = {f"{base}/README": README.encode(), f"{base}/crocodile.webp": _webp((0, 120, 0)),
             f"{base}/meerkats.webp": _webp((150, 120, 60)), f"{base}/uncredited.webp": _webp((1, 2, 3)), f"{base}/animals.qml": b"Item {}"}
    _rcc(tmp_path / "explore_world_animals.rcc", files, compress={"crocodile.webp", "README"})
    assert gcompris.read_rcc(tmp_path / "explore_world_animals.rcc") == files  # zlib entries inflated
    found = {p.key: p for p in gcompris.photos(tmp_path)}
    assert set(found) == {"explore_world_animals/animals/crocodile.webp", "explore_world_animals/animals/meerkats.webp"}  # uncredited: skipped
    croc = found["explore_world_animals/animals/crocodile.webp"]
    assert croc.texts == ("a crocodile", "saltwater crocodile on a river bank")  # "(cropped)" dropped
    assert (croc.group, croc.licence) == ("animals", "CC0-1.0")
    assert found["explore_world_animals/animals/meerkats.webp"].texts == ("meerkats", "meerkat tswalu")  # plural: no article
    out = tmp_path / "out"
    assert gcompris.build(out, tmp_path) == {"written": 2, "unreadable": 0, "rows": 4}
    rows = read_manifest(out / "manifest.jsonl", "match")
    assert [r.text for r in rows] == ["a crocodile", "saltwater crocodile on a river bank", "meerkats", "meerkat tswalu"]
    assert Image.open(rows[0].image).size == (224, 224)


def test_gcompris_names_and_bad_files(tmp_path) -> None:
    import pytest

    from mmdemo.experiments.data import gcompris

    assert gcompris.name_caption("leaningTowerOfPisa3.webp") == "a leaning tower of pisa"
    assert gcompris.name_caption("owl.webp") == "an owl"
    assert gcompris.name_caption("solar4.webp") == "solar panels"
    assert gcompris.name_caption("glass.webp") == "a glass"
    assert gcompris.name_caption("3.webp") is None
    (tmp_path / "not.rcc").write_bytes(b"PK\x03\x04 not a resource")
    with pytest.raises(gcompris.RccError, match="not a Qt resource"):
        gcompris.read_rcc(tmp_path / "not.rcc")
    with pytest.raises(SystemExit, match="apt-get install gcompris-qt-data"):
        gcompris.check_available(tmp_path)


def test_gcompris_reads_every_rcc_format_and_leaves_out_zstd_entries(tmp_path) -> None:
    import pytest

    from mmdemo.experiments.data import gcompris

    files = {"a/README": b"credits", "a/b/photo.webp": b"\x00\x01 not really webp", "a/packed.qml": b"zstd bytes"}
    for version in (1, 2, 3):
        _rcc(tmp_path / f"v{version}.rcc", files, compress={"README"}, version=version, zstd={"packed.qml"})
        assert gcompris.read_rcc(tmp_path / f"v{version}.rcc") == {k: v for k, v in files.items() if k != "a/packed.qml"}
    (tmp_path / "cut.rcc").write_bytes((tmp_path / "v3.rcc").read_bytes()[:40])
    with pytest.raises(gcompris.RccError, match="damaged"):
        gcompris.read_rcc(tmp_path / "cut.rcc")
