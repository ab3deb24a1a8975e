"""Start-up, round trip and soak through a launched app: `python -m mmdemo.experiments.serve_bench [--requests 1000] [--clients 8]`.

Starts `python app.py` as its own process on a free loopback port, then through gradio_client:
0. start-up: seconds until the app serves (it warms the models it shows first before that), and the
   first /predict and the first /photo_match after it (what a person's first click costs); and the install
   size: the disk used by requirements.txt's distributions and everything they require.
1. the round-trip latency (sequential calls, p50/p95; every call a new question, as a person asks) of
   /answer (the JSON endpoint) and /predict (the full UI path: the answer with both hops' maps, the overlay,
   the token strip, the object trace and the truth), beside the in-process model latency on the same kind
   of call. gradio_client opens a fresh httpx client for every upload, join and stream, and by default each
   loads the CA bundle (~10 ms apiece, even for http://); the recommended client below passes one shared
   ssl.SSLContext instead (verification unchanged). Both are measured. gradio_client reads its messages
   every 50 ms, so a round trip is about 50 ms plus the server's time, in steps of 50 ms.
2. a soak with varied questions (training paraphrases, frames and surface noise on 64 scenes: almost
   every request a question the server has not seen): two phases of N /predict requests from C concurrent
   clients, the server's resident memory after a warm-up, after phase 1 and after phase 2. Only loopback
   traffic; bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmdemo.experiments.bench import predict_latency
from mmdemo.inference import Predictor
from mmdemo.tasks.sort_of_clevr import data as soc

ROOT = Path(__file__).resolve().parents[2]  # the repository


def install_size_mb(requirements: Path = ROOT / "requirements.txt") -> dict[str, Any]:
    """Disk used by what `pip install -r requirements.txt` installs: the installed distributions it names and
    everything they require (markers evaluated here, extras not followed), from each one's RECORD of files."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo = [Requirement(line.split("#")[0].strip()).name for line in requirements.read_text().splitlines() if line.split("#")[0].strip()]
    seen: dict[str, float] = {}
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = sum(f.locate().stat().st_size for f in dist.files or [] if f.locate().is_file()) / 2**20
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    biggest = sorted(seen.items(), key=lambda kv: -kv[1])[:4]
    return {"install_mb": round(sum(seen.values())), "install_distributions": len(seen),
            "install_biggest_mb": {k: round(v) for k, v in biggest}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def _rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) since it started or since reset_peak_rss."""
    return _status_mb(pid, "VmHWM")


def reset_peak_rss(pid: int) -> None:
    """Set the process's peak resident memory back to its current size (Linux: /proc/PID/clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def start_app(port: int, env: dict[str, str] | None = None, stderr: Any = subprocess.DEVNULL) -> subprocess.Popen:
    """`python app.py` on 127.0.0.1:port (the repository's checkpoints), stdout discarded."""
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    return subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


@contextmanager
def launched_app(stderr: Any = subprocess.DEVNULL, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python app.py` on a free loopback port (env: extra variables): (process, url) once it answers; terminated on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_app(port, env, stderr)
    try:
        wait_up(url, proc)
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError("app did not start")


def make_client(url: str, shared_tls: bool = True):  # -> gradio_client.Client
    """A gradio_client.Client for the app; shared_tls reuses one TLS context for its many short requests."""
    import ssl

    from gradio_client import Client

    verify = ssl.create_default_context() if shared_tls else True
    return Client(url, verbose=False, analytics_enabled=False, download_files=False, ssl_verify=verify)


def varied_jobs(folder: Path, n: int, seed: int = 0, scenes: int = 64) -> list[tuple[str, str]]:
    """n (image path, question) pairs: training wordings with frames and noise, each question distinct where possible."""
    samples = soc.generate("val", scenes, seed=seed)
    paths = []
    for i, s in enumerate(samples):
        path = folder / f"s{i}.png"
        Image.fromarray(s.image).save(path)
        paths.append(str(path))
    rng = np.random.default_rng(seed)
    subtypes, colours = (*soc.NONREL, *soc.REL), list(soc.COLOURS)
    jobs, seen = [], set()
    while len(jobs) < n:
        k = int(rng.integers(scenes))
        for _ in range(20):  # a few tries for a question not asked before
            q = soc.make_question(samples[k].scene, str(rng.choice(subtypes)), str(rng.choice(colours)), rng, "train", frame_prob=0.5)
            key = " ".join(q.text.lower().split()).rstrip("?.! ")
            if key not in seen:
                break
        seen.add(key)
        jobs.append((paths[k], q.text))
    return jobs


def _p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def run(requests: int, clients: int, latency_calls: int) -> dict:
    from gradio_client import handle_file

    from mmdemo.photos import gallery

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    tmp = Path(tempfile.mkdtemp())
    jobs = varied_jobs(tmp, 3 * latency_calls + 2 * requests + 8 * clients + 2, seed=99)
    photo = tmp / "photo.png"
    Image.fromarray(gallery()[2].pixels).save(photo)
    start = time.perf_counter()
    proc = start_app(port, {"MMDEMO_EXAMPLES": str(tmp / "examples")})
    try:
        wait_up(url, proc)
        startup_s = time.perf_counter() - start
        client, default_client = make_client(url), make_client(url, shared_tls=False)
        cursor = iter(range(len(jobs)))

        def call(who, endpoint: str = "/predict") -> float:
            path, text = jobs[next(cursor)]
            t = time.perf_counter()
            who.predict(handle_file(path), text, "sort-of-clevr/default", api_name=endpoint)
            return (time.perf_counter() - t) * 1000

        first_predict_ms = call(client)
        t = time.perf_counter()
        client.predict(handle_file(str(photo)), "a cup of tea", "photos/match", api_name="/photo_match")
        first_photo_ms = (time.perf_counter() - t) * 1000
        timings: dict[str, list[float]] = {"/answer": [], "/predict": [], "default": []}
        for i in range(latency_calls):  # interleaved, so load from elsewhere falls on every endpoint alike
            timings["/answer"].append(call(client, "/answer"))
            timings["/predict"].append(call(client, "/predict"))
            timings["default"].append(call(default_client, "/answer"))
        per_client = [make_client(url) for _ in range(clients)]

        def soak(count: int) -> int:
            mine = [next(cursor) for _ in range(count)]

            def worker(k: int) -> int:
                bad = 0
                for i in mine[k::clients]:
                    path, text = jobs[i]
                    try:
                        per_client[k].predict(handle_file(path), text, "sort-of-clevr/default", api_name="/predict")
                    except Exception:  # noqa: BLE001 - counted, reported
                        bad += 1
                return bad

            with ThreadPoolExecutor(clients) as pool:
                return sum(pool.map(worker, range(clients)))

        soak(8 * clients)  # warm-up under the same load: every queue worker thread has run
        rss = [_rss_mb(proc.pid)]
        t = time.perf_counter()
        errors = soak(requests)
        rss.append(_rss_mb(proc.pid))
        errors += soak(requests)
        soak_s = time.perf_counter() - t
        rss.append(_rss_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    [(model_p50, _)] = predict_latency([Predictor.load()], 100)
    answer_p50, predict_p50 = _p(timings["/answer"], 50), _p(timings["/predict"], 50)
    return {
        "startup_s": round(startup_s, 1),
        "first_predict_ms": round(first_predict_ms, 1),
        "first_photo_match_ms": round(first_photo_ms, 1),
        "model_predict_ms_p50": round(model_p50, 2),
        "answer_client_ms_p50": answer_p50,
        "answer_client_ms_p95": _p(timings["/answer"], 95),
        "answer_overhead_ms_p50": round(answer_p50 - model_p50, 1),
        "predict_client_ms_p50": predict_p50,
        "predict_client_ms_p95": _p(timings["/predict"], 95),
        "predict_overhead_ms_p50": round(predict_p50 - model_p50, 1),
        "default_tls_answer_ms_p50": _p(timings["default"], 50),
        "soak_distinct_questions": len({text for _, text in jobs}),
        "soak_requests_per_phase": requests,
        "soak_clients": clients,
        "soak_errors": errors,
        "soak_seconds": round(soak_s, 1),
        "server_rss_mb": [round(v, 1) for v in rss],
        "rss_growth_phase1_mb": round(rss[1] - rss[0], 1),
        "rss_growth_phase2_mb": round(rss[2] - rss[1], 1),
        **install_size_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.serve_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="soak requests per phase (two phases; default %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument("--latency-calls", type=int, default=100, help="sequential calls timed per endpoint (default %(default)s)")
    args = parser.parse_args(argv)
    result = run(args.requests, args.clients, args.latency_calls)
    for k, v in result.items():
        print(f"{k:>26}: {v}")
    print(json.dumps(result))
    return 0 if result["soak_errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
