"""The app launches on a checkpoint and answers through the real gradio_client (full UI: the app issue)."""

from __future__ import annotations

import importlib
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image

from mmdemo.checkpoint import save_checkpoint
from mmdemo.data import sort_of_clevr as soc
from mmdemo.inference import Predictor
from mmdemo.model import FusionRNN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_import_has_no_side_effects() -> None:
    import app

    importlib.reload(app)
    assert not hasattr(app, "demo")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    import app

    folder = tmp_path_factory.mktemp("ck")
    save_checkpoint(FusionRNN(tiny_config()), folder)
    demo = app.build_demo(Predictor.load(folder, device="cpu"))
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_predict_through_client(server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    path = tmp_path / "scene.png"
    Image.fromarray(soc.generate("test", 1)[0].image).save(path)
    client = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    answer, probs = client.predict(handle_file(str(path)), "What shape is the red object?", api_name="/predict")
    assert answer in tiny_config().labels
    assert probs["label"] == answer


def test_bad_input_is_a_clear_error_and_server_keeps_serving(server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(Exception, match="Not a readable image"):
        client.predict(handle_file(str(bad)), "What shape is the red object?", api_name="/predict")
    good = tmp_path / "good.png"
    Image.fromarray(np.full((75, 75, 3), 255, np.uint8)).save(good)
    answer, _ = client.predict(handle_file(str(good)), "Is the red object at the top?", api_name="/predict")
    assert answer in tiny_config().labels
