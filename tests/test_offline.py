"""The app starts and answers with no network at all: a fresh network namespace (unshare -n) where
only loopback exists. Nothing can be fetched there, so any hub/CDN/analytics call would fail loudly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = r"""
import os, socket, sys
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED"):
    os.environ.pop(var, None)  # the app must set what it needs itself
import numpy as np
from PIL import Image
import app
from mmdemo.inference import Predictor
from mmdemo.tasks.sort_of_clevr import data as soc
from gradio_client import Client, handle_file
try:
    socket.create_connection(("1.1.1.1", 443), timeout=2)
    sys.exit("network reachable: not an offline check")
except OSError:
    pass
demo = app.build_demo(Predictor.load(device="cpu"), example_dir=__import__("pathlib").Path(sys.argv[1]))
demo.queue(default_concurrency_limit=4)
demo.launch(server_name="127.0.0.1", server_port=7899, prevent_thread_lock=True, quiet=True, **{k: v for k, v in app.launch_kwargs().items() if k != "show_error"})
path = os.path.join(sys.argv[1], "scene.png")
Image.fromarray(soc.generate("test", 1)[0].image).save(path)
client = Client("http://127.0.0.1:7899/", verbose=False, analytics_enabled=False, download_files=False)
out = client.predict(handle_file(path), "What shape is the red object?", "sort-of-clevr/default", api_name="/predict")
print("OFFLINE-ANSWER", out[1]["label"])
out = client.predict(handle_file(path), "a cat", "photos/match", api_name="/photo_match")
print("OFFLINE-PHOTO", out[1]["label"])
demo.close()
"""

# Real images and your own data: load the photo model, predict, and train from a manifest, all offline.
PHOTO_SCRIPT = r"""
import json, os, sys
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.pop(var, None)
from PIL import Image
from mmdemo.__main__ import main
from mmdemo.photos import gallery
tmp = sys.argv[1]
rows = []
for photo in gallery()[:4]:
    path = os.path.join(tmp, photo.name + ".png")
    Image.fromarray(photo.pixels).save(path)
    rows.append({"image": photo.name + ".png", "text": photo.caption, "label": photo.name})
with open(os.path.join(tmp, "m.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows + rows)
assert main(["predict", "--checkpoint", "checkpoints/photos/match", "--image", path, "--text", "a cat", "--json"]) == 0
assert main(["train", "--manifest", os.path.join(tmp, "m.jsonl"), "--task", "match", "--epochs", "1", "--quiet", "--out", os.path.join(tmp, "ck")]) == 0
print("OFFLINE-PHOTO-FLOW")
"""


def _offline(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n not permitted here: {probe.stderr.decode().strip()}")
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1" "$2"', sys.executable, script, str(tmp_path)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare and ip (util-linux, iproute2)")
def test_app_answers_without_network(tmp_path: Path) -> None:
    r = _offline(SCRIPT, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OFFLINE-ANSWER" in r.stdout and "OFFLINE-PHOTO" in r.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare and ip (util-linux, iproute2)")
def test_photo_model_and_manifest_training_without_network(tmp_path: Path) -> None:
    r = _offline(PHOTO_SCRIPT, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OFFLINE-PHOTO-FLOW" in r.stdout
