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
from mmdemo.data import sort_of_clevr as soc
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
demo.close()
"""


@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare and ip (util-linux, iproute2)")
def test_app_answers_without_network(tmp_path: Path) -> None:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n not permitted here: {probe.stderr.decode().strip()}")
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1" "$2"', sys.executable, SCRIPT, str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OFFLINE-ANSWER" in r.stdout
