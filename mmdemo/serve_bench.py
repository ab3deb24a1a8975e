"""Round trip and soak through a launched app: `python -m mmdemo.serve_bench [--requests 1000] [--clients 8]`.

Starts `python app.py` as its own process on a free loopback port, then through gradio_client:
1. the round-trip latency of /answer (the JSON endpoint; sequential calls, p50/p95) beside the
   in-process model latency, and of /predict (the UI's endpoint, which also renders the pictures).
   gradio_client opens a fresh httpx client for every upload, join and stream, and by default each one
   loads the CA bundle (~10 ms apiece, even for http://); the recommended client below passes one shared
   ssl.SSLContext instead (verification unchanged). Both are measured. What remains is the client's
   50 ms message poll, which no server can shorten.
2. a soak: N requests to /predict from C concurrent clients; errors, and the server's resident memory
   after a warm-up (sequential calls, then one concurrent round so every worker thread has run), halfway,
   and at the end. Only loopback traffic; bounded in count and time.
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

from mmdemo.bench import predict_latency
from mmdemo.data import sort_of_clevr as soc
from mmdemo.inference import Predictor

ROOT = Path(__file__).resolve().parent.parent


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


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("app did not start")


def make_client(url: str, shared_tls: bool = True):  # -> gradio_client.Client
    """A gradio_client.Client for the app; shared_tls reuses one TLS context for its many short requests."""
    import ssl

    from gradio_client import Client

    verify = ssl.create_default_context() if shared_tls else True
    return Client(url, verbose=False, analytics_enabled=False, download_files=False, ssl_verify=verify)


@contextmanager
def launched_app(stderr: Any = subprocess.DEVNULL, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python app.py` on a free loopback port (env: extra variables): (process, url) once it answers; terminated on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        _wait_up(url, proc)
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def run(requests: int, clients: int, latency_calls: int) -> dict:
    from gradio_client import Client, handle_file

    with launched_app() as (proc, url):
        tmp = Path(tempfile.mkdtemp())
        samples = soc.generate("val", 16, seed=99)
        jobs = []
        for i, s in enumerate(samples):
            path = tmp / f"s{i}.png"
            Image.fromarray(s.image).save(path)
            jobs += [(str(path), q.text) for q in s.questions]

        def call(client: Client, i: int, endpoint: str = "/predict") -> None:
            path, text = jobs[i % len(jobs)]
            client.predict(handle_file(path), text, "sort-of-clevr/default", api_name=endpoint)

        client, default_client = make_client(url), make_client(url, shared_tls=False)
        for i in range(20):  # warm-up
            call(client, i)
        timings: dict[str, list[float]] = {"/answer": [], "/predict": [], "default": []}
        for name, times in timings.items():
            endpoint, who = ("/answer", default_client) if name == "default" else (name, client)
            for i in range(latency_calls):
                start = time.perf_counter()
                call(who, 1000 + i, endpoint)
                times.append((time.perf_counter() - start) * 1000)
        per_client = [make_client(url) for _ in range(clients)]

        def soak(first: int, last: int) -> int:
            def worker(k: int) -> int:
                bad = 0
                for i in range(first + k, last, clients):
                    try:
                        call(per_client[k], i)
                    except Exception:  # noqa: BLE001 - counted, reported
                        bad += 1
                return bad

            with ThreadPoolExecutor(clients) as pool:
                return sum(pool.map(worker, range(clients)))

        soak(0, 4 * clients)  # warm-up under the same load: every queue worker thread has run
        rss_before = _rss_mb(proc.pid)
        start = time.perf_counter()
        errors = soak(0, requests // 2)
        rss_half = _rss_mb(proc.pid)
        errors += soak(requests // 2, requests)
        soak_s = time.perf_counter() - start
        rss_after = _rss_mb(proc.pid)
    [(model_p50, _)] = predict_latency([Predictor.load()], 100)
    p50, p95 = float(np.percentile(timings["/answer"], 50)), float(np.percentile(timings["/answer"], 95))
    return {
        "client_ms_p50": round(p50, 1),
        "client_ms_p95": round(p95, 1),
        "model_predict_ms_p50": round(model_p50, 2),
        "client_overhead_ms_p50": round(p50 - model_p50, 1),
        "ui_predict_client_ms_p50": round(float(np.percentile(timings["/predict"], 50)), 1),
        "default_tls_client_ms_p50": round(float(np.percentile(timings["default"], 50)), 1),
        "soak_requests": requests,
        "soak_clients": clients,
        "soak_errors": errors,
        "soak_seconds": round(soak_s, 1),
        "server_rss_mb_before": round(rss_before, 1),
        "server_rss_mb_half": round(rss_half, 1),
        "server_rss_mb_after": round(rss_after, 1),
        "server_rss_growth_mb": round(rss_after - rss_before, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.serve_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="soak requests (default %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument("--latency-calls", type=int, default=100, help="sequential calls timed (default %(default)s)")
    args = parser.parse_args(argv)
    result = run(args.requests, args.clients, args.latency_calls)
    for k, v in result.items():
        print(f"{k:>24}: {v}")
    print(json.dumps(result))
    return 0 if result["soak_errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
