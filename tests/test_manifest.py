"""Your own data: manifest validation names each bad row; the feature cache; a tiny manifest trains end to end."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mmdemo.__main__ import main
from mmdemo.inference import Predictor
from mmdemo.model.pretrained import FeatureCache
from mmdemo.tasks.matching.manifest import ManifestError, read_manifest, split_rows

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220), "yellow": (240, 220, 40)}


def _write_images(folder, n_per_colour=3):
    rows = []
    rng = np.random.default_rng(0)
    for colour, rgb in COLOURS.items():
        for k in range(n_per_colour):
            arr = np.full((48, 64, 3), 255, np.uint8)
            x, y = rng.integers(4, 30, size=2)
            arr[y : y + 16, x : x + 24] = rgb
            name = f"{colour}_{k}.png"
            Image.fromarray(arr).save(folder / name)
            rows.append({"image": name, "text": f"a {colour} block on white", "label": colour, "group": colour})
    return rows


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_every_bad_row_is_named(tmp_path):
    rows = _write_images(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    rows += [
        {"image": "missing.png", "text": "a cat", "label": "red"},
        {"image": "broken.png", "text": "a cat", "label": "red"},
        {"image": "red_0.png", "text": "   ", "label": "red"},
        {"image": "red_1.png", "text": "a red block", "label": "purple"},
    ]
    manifest = _jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(ManifestError) as err:
        read_manifest(manifest, "classify", min_per_label=2)
    msg = str(err.value)
    assert "4 bad row(s)" in msg
    for expected in ("row 9: image not found: missing.png", "row 10: unreadable image broken.png", "row 11: empty text", "row 12: label 'purple' is too rare"):
        assert expected in msg, msg
    with pytest.raises(ManifestError, match="unknown label 'purple'"):
        read_manifest(manifest, "classify", labels=("red", "green", "blue", "yellow"))


def test_repeat_is_checked_and_oversamples_training_rows_only(tmp_path, monkeypatch):
    rows = _write_images(tmp_path, 2)
    bad = _jsonl(tmp_path / "bad.jsonl", [*rows, {"image": "red_0.png", "text": "x", "repeat": 0}, {"image": "red_1.png", "text": "y", "repeat": "two"}])
    with pytest.raises(ManifestError) as err:
        read_manifest(bad, "match")
    assert "row 9: repeat must be a whole number from 1 to 100, got 0" in str(err.value)
    assert "row 10: repeat must be a whole number from 1 to 100, got 'two'" in str(err.value)
    train_image = split_rows(read_manifest(_jsonl(tmp_path / "plain.jsonl", rows), "match"))[0][0].image.name
    for r in rows:
        r["repeat"] = 3 if r["image"] == train_image else 1
    parsed = read_manifest(_jsonl(tmp_path / "m.jsonl", rows), "match")
    assert sorted(r.repeat for r in parsed) == [1] * (len(rows) - 1) + [3]
    import mmdemo.tasks.matching.pairs as tm

    seen = {}

    def spy(rows_, data, rng):
        seen["train"] = [r.image.name for r in rows_]
        raise StopIteration  # stop once the first epoch's pairs are asked for

    monkeypatch.setattr(tm, "match_pairs", spy)
    train, _ = split_rows(parsed)
    with pytest.raises(StopIteration):
        tm.train_manifest(tmp_path / "m.jsonl", "match", tm.ModelConfig(), tm.TrainConfig(out=str(tmp_path / "ck"), epochs=1), progress=False)
    assert seen["train"].count(train_image) == 3 and len(seen["train"]) == len(train) + 2  # validation is untouched


def test_csv_header_and_split_are_checked_and_deterministic(tmp_path):
    rows = _write_images(tmp_path, 3)
    bad = tmp_path / "bad.csv"
    bad.write_text("picture,caption\nred_0.png,a red block\n")
    with pytest.raises(ManifestError, match="must name the columns image and text"):
        read_manifest(bad, "match")
    good = tmp_path / "good.csv"
    good.write_text("image,text\n" + "".join(f"{r['image']},{r['text']} {i}\n" for i, r in enumerate(rows)))
    parsed = read_manifest(good, "match")
    assert len(parsed) == len(rows)
    a, b = split_rows(parsed, 0.25), split_rows(list(reversed(parsed)), 0.25)
    assert {r.line for r in a[1]} == {r.line for r in b[1]} and a[1]
    assert not {r.line for r in a[0]} & {r.line for r in a[1]}


def test_feature_cache_is_identical_and_keyed_by_content_and_encoder(tmp_path, monkeypatch):
    import mmdemo.model.pretrained as pre

    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2)]
    cache = FeatureCache(tmp_path, max_items=0)  # disk only
    first = cache.get(imgs)
    assert first.shape == (2, 1280, 7, 7) and cache.computed == 2
    again = FeatureCache(tmp_path).get(imgs)  # a new process would read the files
    assert torch.equal(first, again)
    fresh = FeatureCache(None)
    assert torch.equal(fresh.get(imgs), first) and fresh.computed == 2
    changed = imgs[0].copy()
    changed[0, 0, 0] ^= 1
    c2 = FeatureCache(tmp_path)
    c2.get([changed, imgs[1]])
    assert c2.computed == 1  # a changed pixel is a new image
    monkeypatch.setattr(pre, "encoder_id", lambda: "efficientnet-lite0-otherweights")
    c3 = FeatureCache(tmp_path)
    c3.get(imgs)
    assert c3.computed == 2  # another encoder never reads the old features


def test_tiny_manifest_trains_end_to_end_and_predicts(tmp_path, capsys):
    rows = _write_images(tmp_path, 3)
    manifest = _jsonl(tmp_path / "m.jsonl", rows)
    out = tmp_path / "ckpt"
    code = main(["train", "--manifest", str(manifest), "--task", "classify", "--epochs", "15", "--batch-images", "4",
                 "--lr", "3e-3", "--quiet", "--threads", "1", "--out", str(out), "--val-fraction", "0.25"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_rows"] + metrics["val_rows"] == len(rows)
    pred = Predictor.load(out).predict(tmp_path / "blue_0.png", "a blue block on white")
    assert set(pred.probs) == set(COLOURS) and pred.grid == [7, 7]
    assert len(pred.region_attention[0]) == 49 and abs(sum(pred.region_attention[0]) - 1) < 1e-4
    assert pred.answer == "blue"

    match_out = tmp_path / "match"
    assert main(["train", "--manifest", str(manifest), "--task", "match", "--epochs", "2", "--quiet", "--out", str(match_out)]) == 0
    pred = Predictor.load(match_out).predict(tmp_path / "red_0.png", "a red block")
    assert set(pred.probs) == {"match", "mismatch"}


def test_bad_manifest_is_one_line_exit_2(tmp_path, capsys):
    manifest = _jsonl(tmp_path / "m.jsonl", [{"image": "nope.png", "text": "x", "label": "a"}])
    assert main(["train", "--manifest", str(manifest), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 1: image not found: nope.png" in err[0]


# ------------------------------------------------------------------------- hostile inputs (issue 16)


def test_csv_with_a_byte_order_mark_is_read(tmp_path):
    rows = _write_images(tmp_path, 2)
    text = "image,text,label\n" + "".join(f"{r['image']},{r['text']},{r['label']}\n" for r in rows)
    (tmp_path / "m.csv").write_text(text, encoding="utf-8-sig")  # what Excel writes
    assert len(read_manifest(tmp_path / "m.csv", "classify", check_images=False)) == len(rows)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("big.csv", "image,text\na.png," + "x" * 200_000 + "\n", "row 2: field larger than field limit"),
        ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", "line 1: not valid JSON (nested too deeply)"),
        ("latin1.jsonl", '{"image": "a.png", "text": "caf\xe9"}\n', "not UTF-8"),
        ("long.jsonl", json.dumps({"image": "a.png", "text": "x" * 100_001, "label": "a"}) + "\n", "text over 100,000 characters"),
    ],
    ids=["csv-field-over-limit", "nested-jsonl", "not-utf8", "text-over-limit"],
)
def test_hostile_manifests_are_one_line_exit_2(tmp_path, capsys, name, content, message):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / name).write_bytes(content.encode("latin-1" if "latin1" in name else "utf-8"))
    assert main(["train", "--manifest", str(tmp_path / name), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
