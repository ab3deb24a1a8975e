"""app.py: the wiring of the rooms (mmdemo.demo, tested alone in test_demo.py) into gradio, through the real
gradio_client; and app.py's own shape: thin, and nothing at import."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image

from mmdemo.checkpoint import save_checkpoint
from mmdemo.demo.scenes import EXAMPLE_QUESTIONS, EXAMPLE_SEEDS, example_scene
from mmdemo.model import FusionRNN
from mmdemo.registry import Registry
from mmdemo.tasks.sort_of_clevr import data as soc

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_match_config():
    return tiny_config(image_encoder="efficientnet_lite0", image_size=224, grid=7, labels=("match", "mismatch"), task="match", num_hops=1)


def test_import_has_no_side_effects() -> None:
    import app

    importlib.reload(app)
    assert not hasattr(app, "demo")


def test_importing_the_app_leaves_the_environment_alone() -> None:
    """In a clean process: `import app` sets no environment variable (python app.py sets them, in its entry point)."""
    script = ("import json, os, sys; before = dict(os.environ); import app; "
              "print(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "GRADIO_"))}
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {}


def test_the_app_only_lays_out_and_wires() -> None:
    """app.py stays thin (the work is in mmdemo.demo) and its Blocks send no analytics without any variable set."""
    assert len((ROOT / "app.py").read_text().splitlines()) <= 350
    source = (ROOT / "app.py").read_text()
    assert "analytics_enabled=False" in source and "class Handlers" not in source


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    import app

    root = tmp_path_factory.mktemp("ck")
    save_checkpoint(FusionRNN(tiny_config()), root / "sort-of-clevr" / "default")
    save_checkpoint(FusionRNN(tiny_match_config()), root / "photos" / "match")
    save_checkpoint(FusionRNN(tiny_config(question_input="audio", audio_channels=8)), root / "sort-of-clevr" / "spoken")
    demo = app.build_demo(registry=Registry(root, device="cpu"), example_dir=root / "examples")
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(**{**app.launch_kwargs(), "server_name": "127.0.0.1", "server_port": port, "prevent_thread_lock": True, "quiet": True})
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_predict_through_client(server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    path = tmp_path / "scene.png"
    Image.fromarray(soc.generate("test", 1)[0].image).save(path)
    client = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    result = client.predict(handle_file(str(path)), "What shape is the red object?", "sort-of-clevr/default", api_name="/predict")
    answer_md, probs, maps, overlay, step, tokens, trace, truth, hop, heard = result  # README's and docs/APP.md's order
    assert probs["label"] in tiny_config().labels and probs["label"] in answer_md
    steps = step["maximum"] + 1
    assert tokens.count("data-t=") == steps and len(json.loads(maps["plot"])["data"][0]["z"][0]) == 6 * steps - 1  # every step
    assert f'data-step="{step["value"]}"' in tokens and json.loads(trace["plot"])["data"] and Path(overlay["path"]).suffix == ".png"
    assert hop == 0 and heard["visible"] is False and "ground truth" in truth.lower()  # hop 1 shown again; no time plot for typed words


def test_spoken_question_through_client(server: str, tmp_path: Path) -> None:
    """Ask by voice through the real server: a WAV file in; the answer, steps in time and the time plot out."""
    import soundfile as sf
    from gradio_client import Client, handle_file

    path = tmp_path / "scene.png"
    Image.fromarray(soc.generate("test", 1)[0].image).save(path)
    from mmdemo.tasks.sort_of_clevr.speech import synthesize

    voiced = synthesize("What shape is the red object?", "en-us", rate=220).samples
    wav = tmp_path / "question.wav"
    sf.write(wav, np.resize(voiced, int(1.6 * 16000)) if len(voiced) < 1.6 * 16000 else voiced[: int(1.6 * 16000)], 16000)
    client = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    out = client.predict(handle_file(str(path)), handle_file(str(wav)), "sort-of-clevr/spoken", api_name="/predict_audio")
    answer_md, probs, heard = out[0], out[1], out[-1]
    assert probs["label"] in tiny_config().labels and probs["label"] in answer_md and "heard 1.60 s in 40 steps" in answer_md
    assert heard["visible"] is True and json.loads(heard["value"]["plot"])["layout"]["xaxis3"]["title"]["text"] == "time (s)"  # the time plot, shown
    assert out[4]["maximum"] == 39  # the step slider walks 40 steps of 40 ms
    t = np.arange(int(1.6 * 16000)) / 16000
    tone = tmp_path / "tone.wav"
    sf.write(tone, (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), 16000)
    out = client.predict(handle_file(str(path)), handle_file(str(tone)), "sort-of-clevr/spoken", api_name="/predict_audio")
    assert "No question heard" in out[0] and "label" not in (out[1] or {})  # a warbling tone: no answer at all
    with pytest.raises(Exception, match="spoken question first"):
        client.predict(handle_file(str(path)), None, "sort-of-clevr/spoken", api_name="/predict_audio")


def test_bad_input_is_a_clear_error_and_server_keeps_serving(server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False, analytics_enabled=False, download_files=False)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(Exception, match="Not a readable image"):
        client.predict(handle_file(str(bad)), "What shape is the red object?", "sort-of-clevr/default", api_name="/predict")
    good = tmp_path / "good.png"
    Image.fromarray(np.full((75, 75, 3), 255, np.uint8)).save(good)
    result = client.predict(handle_file(str(good)), "Is the red object at the top?", "sort-of-clevr/default", api_name="/predict")
    assert result[1]["label"] in tiny_config().labels


# ---------------------------------------------------------------------- bad input through the client


def _client(server: str):
    from gradio_client import Client

    return Client(server, verbose=False, analytics_enabled=False, download_files=False)


def _save(tmp_path: Path, name: str, im: Image.Image, **kw) -> str:
    path = tmp_path / name
    im.save(path, **kw)
    return str(path)


def test_odd_images_and_texts_through_client(server: str, tmp_path: Path) -> None:
    from gradio_client import handle_file

    scene = Image.fromarray(soc.generate("test", 1)[0].image)
    frames = [scene, scene.convert("L").convert("RGB")]
    images = {
        "gray": _save(tmp_path, "g.png", scene.convert("L")),
        "rgba": _save(tmp_path, "a.png", scene.convert("RGBA")),
        "palette": _save(tmp_path, "p.png", scene.convert("P")),
        "16-bit": _save(tmp_path, "i16.png", scene.convert("I").convert("I;16")),
        "animated": _save(tmp_path, "anim.gif", frames[0], save_all=True, append_images=frames[1:]),
        "jpeg": _save(tmp_path, "s.jpg", scene),
    }
    client = _client(server)
    for name, path in images.items():
        out = client.predict(handle_file(path), "What shape is the red object?", "sort-of-clevr/default", api_name="/predict")
        assert out[1]["label"] in tiny_config().labels, name
    texts = ["x" * 10_000, "red?\x00\x07\x1b[31m", "What shape is the 🔴 object? 🤔", "ما شكل الجسم الأحمر؟", "<script>alert('x')</script><b>red</b>"]
    for text in texts:
        out = client.predict(handle_file(images["jpeg"]), text, "sort-of-clevr/default", api_name="/predict")
        assert out[1]["label"] in tiny_config().labels
        assert "<script>" not in out[0] and "<b>" not in out[0]


def test_huge_image_and_missing_inputs_are_clear_errors(server: str, tmp_path: Path) -> None:
    from gradio_client import handle_file

    bomb = _save(tmp_path, "bomb.png", Image.new("1", (20000, 20000)))  # ~50 kB file, 400 Mpx image
    client = _client(server)
    for image, text, message in [(bomb, "What shape is the red object?", "Not a readable image|too large"), (None, "hi", "No image"), (bomb, "", "Not a readable image|too large|empty")]:
        with pytest.raises(Exception, match=message):
            client.predict(handle_file(image) if image else None, text, "sort-of-clevr/default", api_name="/predict")
    good = _save(tmp_path, "ok.png", Image.fromarray(soc.generate("test", 1)[0].image))
    with pytest.raises(Exception, match="empty"):
        client.predict(handle_file(good), "   ", "sort-of-clevr/default", api_name="/predict")
    assert client.predict(handle_file(good), "Is the red object at the top?", "sort-of-clevr/default", api_name="/predict")[1]["label"]


def test_photo_endpoints_through_client(server: str, tmp_path: Path) -> None:
    from gradio_client import handle_file

    from mmdemo.photos import gallery

    path = _save(tmp_path, "cat.jpg", Image.fromarray(gallery()[0].pixels))
    client = _client(server)
    out = client.predict(handle_file(path), "a cat", "photos/match", api_name="/photo_match")
    assert out[1]["label"] in ("match", "mismatch") and "P(match)" in out[0]
    ranked = client.predict("a rocket", "photos/match", api_name="/search")
    assert len(ranked) == len(gallery())
    with pytest.raises(Exception, match="empty"):
        client.predict(handle_file(path), "  ", "photos/match", api_name="/photo_match")


def test_four_requests_in_flight_get_their_own_answers(server: str, tmp_path: Path) -> None:
    """Concurrent requests share one model; each answer must equal the same request made alone."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import handle_file

    samples = soc.generate("test", 4, seed=5)
    paths = [_save(tmp_path, f"c{i}.png", Image.fromarray(s.image)) for i, s in enumerate(samples)]
    questions = [s.questions[i].text for i, s in enumerate(samples)]
    client = _client(server)

    def call(i: int) -> dict:
        return client.predict(handle_file(paths[i]), questions[i], "sort-of-clevr/default", api_name="/predict")[1]

    alone = [call(i) for i in range(4)]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(call, list(range(4)) * 3))
    for i, probs in enumerate(together):
        assert probs == alone[i % 4]


# ----------------------------------------------------------------- the Ask tab's defects, through the client


def test_scene_truth_and_domain_through_client(server: str, tmp_path: Path) -> None:
    """Defects 1-3 and 7 as a client sees them: a new scene every call with -1, an example's own truth after a
    generated scene, a photo marked out of domain, and Compare returning the image it compared."""
    from gradio_client import handle_file

    from mmdemo.photos import gallery

    client = _client(server)
    captions = [client.predict(-1, api_name="/random_scene")[-1] for _ in range(2)]
    assert captions[0] != captions[1] and all("seed" in c for c in captions)
    client.predict(42, api_name="/random_scene")
    seed, question = EXAMPLE_SEEDS[0], EXAMPLE_QUESTIONS[0]
    example = _save(tmp_path, "example.png", Image.fromarray(soc.render(example_scene(seed))))
    out = client.predict(handle_file(example), question, "sort-of-clevr/default", api_name="/predict")
    assert f"True answer: **{soc.true_answer(example_scene(seed), question)}**" in out[7]
    photo = _save(tmp_path, "cat.png", Image.fromarray(gallery()[0].pixels))
    out = client.predict(handle_file(photo), question, "sort-of-clevr/default", api_name="/predict")
    assert "Out of domain" in out[0] and "only for generated scenes" in out[7]
    compared, table, _, summary = client.predict(handle_file(photo), question, api_name="/compare")
    assert Path(compared["path"]).suffix == ".png" and table["data"][0][0] == "default" and table["data"][0][5].endswith("%")
    assert table["data"][0][3] == "unknown" and "Why:" in summary  # a photo: no truth, the answers all the same


def test_editor_through_client(server: str) -> None:
    """Defects 4 and 6: the minimum gap is kept (and said); an impossible edit is a message, not an error."""
    client = _client(server)
    refused = client.predict("red", "move", 20, 20, "blue", "What shape is the red object?", "sort-of-clevr/default", api_name="/edit_scene")
    assert "needs a generated scene" in refused[2]
    client.predict(42, api_name="/random_scene")
    gray = example_scene(42).find("gray")
    out = client.predict("red", "move", gray.x, gray.y, "blue", "What shape is the red object?", "sort-of-clevr/default", api_name="/edit_scene")
    assert "nearest free spot" in out[2] and "Edited scene" in out[1] and out[3].startswith("## ")


def test_faithfulness_buttons_through_client(server: str, tmp_path: Path) -> None:
    """Issue 31 as a client sees it: /explain gives the four pictures; each /remove_ignored call returns a new image,
    the scene with one object fewer, whose true answer (recomputed here from the generator) is the one shown and
    equals the one before; /remove_looked changes the scene too; an upload has no panel."""
    from gradio_client import handle_file

    client = _client(server)
    question = "What shape is the object furthest from the red object?"
    image = client.predict(42, api_name="/random_scene")[0]
    *tiles, note, verdict = client.predict(handle_file(image["path"]), question, "sort-of-clevr/default", api_name="/explain")
    assert len(tiles) == 4 and all(Path(t["path"]).suffix == ".png" for t in tiles) and "The look that decided" in note and verdict == ""
    scene = example_scene(42)
    truth = soc.true_answer(scene, question)
    for _ in range(2):
        out = client.predict(handle_file(image["path"]), question, "sort-of-clevr/default", api_name="/remove_ignored")
        shown = np.asarray(Image.open(out[0]["path"]).convert("RGB"))
        fewer = [soc.Scene(tuple(o for o in scene.objects if o is not gone)) for gone in scene.objects]
        match = [sc for sc in fewer if np.array_equal(soc.render(sc), shown)]
        assert len(match) == 1, "the image shown is the scene with one object removed"
        scene, image = match[0], out[0]
        assert soc.true_answer(scene, question) == truth and f"True answer: **{truth}**" in out[15]  # the truth shown is this image's
        assert f"| after | **{out[8].splitlines()[0].removeprefix('## ')}** | **{truth}** |" in out[7]  # the answer shown, beside it
    out = client.predict(handle_file(image["path"]), question, "sort-of-clevr/default", api_name="/remove_looked")
    assert "Edited scene" in out[1] and not np.array_equal(np.asarray(Image.open(out[0]["path"]).convert("RGB")), soc.render(scene))
    photo = _save(tmp_path, "upload.png", Image.fromarray(soc.render(example_scene(77))))
    *tiles, note, _ = client.predict(handle_file(photo), question, "sort-of-clevr/default", api_name="/explain")
    assert tiles == [None] * 4 and "Needs a generated scene" in note


def test_photo_reference_through_client(server: str, tmp_path: Path) -> None:
    """Defect 8: the photo answer comes with the zero-shot reference's score for the same input."""
    from gradio_client import handle_file

    from mmdemo.photos import gallery

    path = _save(tmp_path, "camera.png", Image.fromarray(gallery()[5].pixels))
    out = _client(server).predict(handle_file(path), "a red car", "photos/match", api_name="/photo_match")
    assert "zero-shot reference" in out[6] and "cosine" in out[6]


@pytest.mark.slow
def test_first_clicks_after_launch_answer_like_the_others(tmp_path: Path) -> None:
    """Defect 5: `python app.py` warms every model it shows first before it serves (real checkpoints)."""
    import statistics
    import time

    from gradio_client import handle_file

    from mmdemo.experiments import serve_bench
    from mmdemo.photos import gallery

    scene = _save(tmp_path, "scene.png", Image.fromarray(soc.generate("val", 1, seed=7)[0].image))
    photo = _save(tmp_path, "photo.png", Image.fromarray(gallery()[2].pixels))
    port = free_port()
    proc = serve_bench.start_app(port, {"MMDEMO_EXAMPLES": str(tmp_path / "examples")})
    try:
        serve_bench.wait_up(f"http://127.0.0.1:{port}/", proc, timeout=600)
        client = serve_bench.make_client(f"http://127.0.0.1:{port}/")

        def timed(*args, api_name: str) -> float:
            start = time.perf_counter()
            client.predict(*args, api_name=api_name)
            return time.perf_counter() - start

        colours = list(soc.COLOURS)
        asks = [timed(handle_file(scene), f"Is the {c} object on the left?", "sort-of-clevr/default", api_name="/predict") for c in colours[:4]]
        matches = [timed(handle_file(photo), s, "photos/match", api_name="/photo_match") for s in ("a cup", "a mug", "a drink", "coffee")]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    for first, later in ((asks[0], asks[1:]), (matches[0], matches[1:])):
        assert first <= max(1.5, 3 * statistics.median(later)), (first, later)


# ------------------------------------------------------------------------- hostile inputs (issue 16)


def test_no_checkpoint_means_the_shipped_default(server: str, tmp_path: Path) -> None:
    """checkpoint=None answered with the photo model: photos/ sorts before sort-of-clevr/."""
    from gradio_client import handle_file

    path = _save(tmp_path, "s.png", Image.fromarray(soc.generate("test", 1)[0].image))
    for api_name in ("/answer", "/predict"):
        out = _client(server).predict(handle_file(path), "What shape is the red object?", None, api_name=api_name)
        answer = out["answer"] if api_name == "/answer" else out[1]["label"]
        assert answer in tiny_config().labels, api_name
    out = _client(server).predict(handle_file(path), "a cat", None, api_name="/photo_match")
    assert {c["label"] for c in out[1]["confidences"]} == {"match", "mismatch"}


@pytest.mark.parametrize("seed", [1e30, 2**70, -5])
def test_seed_past_the_limit_is_a_clear_error_not_a_hang(server: str, seed: float) -> None:
    client = _client(server)
    with pytest.raises(Exception, match="seed must be a whole number"):
        client.submit(seed, api_name="/random_scene").result(timeout=60)
    assert "seed 42" in client.submit(42, api_name="/random_scene").result(timeout=60)[1]  # (image, caption)


def test_seed_that_is_not_a_number_is_a_clear_error(server: str) -> None:
    """NaN or text in raw JSON (gradio_client will not send NaN) was a bare error without a message."""
    import httpx

    for body in (b'{"data": [NaN]}', b'{"data": ["abc"]}'):
        r = httpx.post(f"{server}gradio_api/call/random_scene", content=body, headers={"content-type": "application/json"}, timeout=60)
        stream = httpx.get(f"{server}gradio_api/call/random_scene/{r.json()['event_id']}", timeout=60).text
        assert "event: error" in stream and "seed must be a whole number" in stream, stream


def test_error_messages_reach_clients_as_plain_text(server: str) -> None:
    """gr.Error text was HTML-escaped: API clients read 'click &#x27;New random scene&#x27;'."""
    from mmdemo import components

    with pytest.raises(Exception) as caught:
        _client(server).submit(1e30, api_name="/random_scene").result(timeout=60)
    assert "seed must be a whole number" in str(caught.value) and "&#" not in str(caught.value)
    edited = _client(server).submit("red", "move", 10, 10, "blue", api_name="/edit_scene").result(timeout=60)
    message = next(x for x in edited if isinstance(x, str) and "New random scene" in x)  # a refused edit is a message
    assert "&#" not in message
    message = components.error("a <b>bold</b> & 'quoted' \"name\"").message
    assert not set(message) & set("<>&") and "'quoted' \"name\"" in message


def test_long_thin_image_is_refused_before_any_allocation(server: str, tmp_path: Path) -> None:
    """A 20000 x 1 PNG (about 160 bytes) grew the server by ~1.5 GB: it was padded to a square first."""
    from conftest import peak_rise_mb
    from gradio_client import handle_file

    client = _client(server)
    path = _save(tmp_path, "w.png", Image.new("RGB", (20000, 1)))
    job = client.submit(handle_file(path), "What shape is the red object?", "sort-of-clevr/default", api_name="/answer")
    error, peak = peak_rise_mb(job.result, timeout=60)  # the server runs in this process
    assert "longest side" in str(error) and peak < 300
    ok = client.predict(handle_file(_save(tmp_path, "h.png", Image.new("RGB", (1, 8000)))), "Is it red?", "sort-of-clevr/default", api_name="/answer")
    assert ok["answer"] in tiny_config().labels


def test_request_body_over_the_limit_is_refused_unread(server: str) -> None:
    """An image inline as a data: URL skipped the upload limit (100 MB accepted, +685 MB): bodies are capped."""
    import httpx

    from mmdemo.limits import MAX_REQUEST_BYTES

    url = f"{server}gradio_api/call/answer"
    image = {"path": "x.png", "url": "data:image/png;base64," + "A" * MAX_REQUEST_BYTES, "meta": {"_type": "gradio.FileData"}}
    r = httpx.post(url, json={"data": [image, "What shape?", None]}, timeout=60)
    assert r.status_code == 413 and "request body is over" in r.json()["detail"]
    chunked = httpx.post(url, content=iter([b"{" * 2**20] * 40), headers={"content-type": "application/json"}, timeout=60)
    assert chunked.status_code == 413
    assert httpx.post(url, json={"data": [None, "hi", None]}, timeout=60).status_code == 200  # small bodies pass


@pytest.mark.slow
def test_hostile_bench_cases_pass_against_the_test_server(server: str, tmp_path: Path) -> None:
    """python -m mmdemo.experiments.hostile_bench's cases, in process: each refused clearly or answered, under 300 MB, no hang."""
    import os

    from mmdemo.experiments import hostile_bench as hb

    session = hb.Session(server, tmp_path, timeout=60)
    results = [hb.run_case(session, case, os.getpid()) for case in hb.cases(session)]
    assert all(r.ok for r in results), hb.table(results)
