"""Hostile inputs against a launched app: `python -m mmdemo.experiments.hostile_bench [--json]`.

Starts `python app.py` on a free loopback port (serve_bench.launched_app) and sends, one at a time, the inputs
of issue 16 and a few more at the limits (mmdemo.limits). For each: what came back (an answer, or the message a
person would read), the seconds it took, and the server's peak resident memory during the request above its size
before it (VmHWM after a reset through /proc/PID/clear_refs); then it checks that the server still answers.
Exit 1 when a bar is missed: a call that hangs (no reply in --timeout seconds), a peak over 300 MB, a refusal
without a clear message, an answer where a refusal was expected (or the reverse), or a server that stops answering.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmdemo.experiments.serve_bench import launched_app, make_client, peak_rss_mb, reset_peak_rss
from mmdemo.limits import MAX_FILE_BYTES, MAX_REQUEST_BYTES, MAX_SEED, MAX_TEXT_CHARS
from mmdemo.tasks.sort_of_clevr import data as soc

PEAK_BAR_MB = 300.0
QUESTION = "What shape is the red object?"
CHECKPOINT = "sort-of-clevr/default"


class Refused(Exception):
    """The server said no; the message is what the client was shown."""


@dataclass
class Case:
    name: str
    send: Callable[[Any], Any]  # (Session) -> the reply; raises Refused (or the client's own error) when refused
    expect: str  # "answer", or a regular expression the refusal's message must match


@dataclass
class Result:
    case: str
    outcome: str  # answered | refused | hung | error
    message: str
    seconds: float
    peak_mb: float  # server peak RSS during the request, above its RSS before it
    alive: bool  # the server answered a normal request afterwards
    ok: bool


class Session:
    """A gradio_client and raw HTTP against one server; files are written once, before any measurement."""

    def __init__(self, url: str, workdir: Path, timeout: float) -> None:
        self.url, self.dir, self.timeout = url, workdir, timeout
        self.client = make_client(url)
        self.scene = self.png("scene.png", Image.fromarray(soc.generate("test", 1)[0].image))
        self.uploaded = self._upload(self.scene)

    def fresh(self) -> Session:
        """The same server through a new client session (no scene generated yet)."""
        other = Session.__new__(Session)
        other.__dict__.update(self.__dict__, client=make_client(self.url))
        return other

    def png(self, name: str, im: Image.Image) -> str:
        path = self.dir / name
        if not path.exists():
            im.save(path)
        return str(path)

    def predict(self, *args: Any, api_name: str) -> Any:
        """gradio_client, bounded in time: a hang is a TimeoutError, not a wait forever."""
        from gradio_client import handle_file

        args = tuple(handle_file(a) if isinstance(a, str) and a.endswith(".png") else a for a in args)
        return self.client.submit(*args, api_name=api_name).result(timeout=self.timeout)

    def _upload(self, path: str) -> str:
        import httpx

        with open(path, "rb") as f:
            r = httpx.post(f"{self.url}gradio_api/upload", files={"files": (Path(path).name, f)}, timeout=self.timeout)
        r.raise_for_status()
        return r.json()[0]

    def call_raw(self, api: str, body: bytes) -> Any:
        """POST /gradio_api/call/<api> with a hand-made JSON body (a data: URL, a NaN), then read the result."""
        import httpx

        r = httpx.post(f"{self.url}gradio_api/call/{api}", content=body, headers={"content-type": "application/json"}, timeout=self.timeout)
        if r.status_code != 200:
            raise Refused(f"HTTP {r.status_code}: {r.json().get('detail', r.text[:200])}")
        event_id, event = r.json()["event_id"], None
        with httpx.stream("GET", f"{self.url}gradio_api/call/{api}/{event_id}", timeout=self.timeout) as s:
            for line in s.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = json.loads(line[5:])
                    if event == "error":
                        raise Refused(str(payload.get("error") if isinstance(payload, dict) else payload))
                    return payload
        raise Refused("the result stream ended without a result")

    def data_url_body(self, raw: bytes, mime: str = "image/png") -> bytes:
        """The /call/answer body with the image inline as a data: URL (built before the request is measured)."""
        url = f"data:{mime};base64," + base64.b64encode(raw).decode()
        image = {"path": self.uploaded, "url": url, "meta": {"_type": "gradio.FileData"}}
        return json.dumps({"data": [image, QUESTION, CHECKPOINT]}).encode()


def cases(s: Session) -> list[Case]:
    """The hostile inputs: issue 16's list first, then the largest inputs the limits let through."""
    big_side = 5000  # 25 MP: the largest square allowed
    png = {  # every file is written now, before any request is measured
        "w20000": s.png("w20000.png", Image.new("RGB", (20000, 1))),
        "w10000": s.png("w10000.png", Image.new("RGB", (10000, 1))),
        "w8000": s.png("w8000.png", Image.new("RGB", (8000, 1))),
        "h8000": s.png("h8000.png", Image.new("RGB", (1, 8000))),
        "bomb": s.png("bomb.png", Image.new("1", (20000, 20000))),
        "rgba": s.png("rgba-25mp.png", Image.new("RGBA", (big_side, big_side), (200, 30, 30, 128))),
        "gray16": s.png("gray16-25mp.png", Image.fromarray(np.full((big_side, big_side), 40000, dtype=np.uint16))),
    }
    bodies = {  # gradio 6.31 reads the uploaded path of a FileData, not its url: what a data: URL costs is its body
        "19mb": s.data_url_body(np.random.default_rng(0).bytes(19 * 2**20)),
        "30mb": s.data_url_body(b"\0" * (30 * 2**20)),
        "100mb": s.data_url_body(b"\0" * (100 * 2**20)),
    }
    answer = "/answer"
    return [
        Case("20000x1 PNG (issue: +1.5 GB)", lambda s: s.predict(png["w20000"], QUESTION, CHECKPOINT, api_name=answer), "too large"),
        Case("10000x1 PNG (issue: +375 MB)", lambda s: s.predict(png["w10000"], QUESTION, CHECKPOINT, api_name=answer), "too large"),
        Case("8000x1 PNG (allowed)", lambda s: s.predict(png["w8000"], QUESTION, CHECKPOINT, api_name=answer), "answer"),
        Case("1x8000 PNG (allowed)", lambda s: s.predict(png["h8000"], QUESTION, CHECKPOINT, api_name=answer), "answer"),
        Case("20000x20000 1-bit PNG (bomb)", lambda s: s.predict(png["bomb"], QUESTION, CHECKPOINT, api_name=answer), "too large|Not a readable"),
        Case("5000x5000 RGBA PNG (largest allowed)", lambda s: s.predict(png["rgba"], QUESTION, CHECKPOINT, api_name=answer), "answer"),
        Case("5000x5000 16-bit PNG (largest allowed)", lambda s: s.predict(png["gray16"], QUESTION, CHECKPOINT, api_name=answer), "answer"),
        Case("data: URL, 19 MB (largest body allowed)", lambda s: s.call_raw("answer", bodies["19mb"]), "answer"),
        Case("data: URL, 30 MB (issue)", lambda s: s.call_raw("answer", bodies["30mb"]), "413|over"),
        Case("data: URL, 100 MB (issue: +685 MB)", lambda s: s.call_raw("answer", bodies["100mb"]), "413|over"),
        Case("seed 1e30 (issue: hang)", lambda s: s.predict(1e30, api_name="/random_scene"), "seed must be"),
        Case("seed 2**70 (issue: hang)", lambda s: s.predict(2**70, api_name="/random_scene"), "seed must be"),
        Case("seed NaN (raw JSON: clients refuse to send it)", lambda s: s.call_raw("random_scene", b'{"data": [NaN]}'), "seed must be"),
        Case(f"seed {MAX_SEED} (allowed)", lambda s: s.predict(MAX_SEED, api_name="/random_scene"), "answer"),
        Case("checkpoint None on /answer (issue: photo model)", lambda s: _is_scene_answer(s.predict(s.scene, QUESTION, None, api_name=answer)), "answer"),
        Case("checkpoint None on /predict (issue: photo model)", lambda s: _is_scene_answer(s.predict(s.scene, QUESTION, None, api_name="/predict")), "answer"),
        Case(f"text of {MAX_TEXT_CHARS + 1:,} characters", lambda s: s.predict(s.scene, "x" * (MAX_TEXT_CHARS + 1), CHECKPOINT, api_name=answer), "too long"),
        Case("text of 90,000 x U+FDFA (NFKC x18)", lambda s: s.predict(s.scene, "\ufdfa" * 90_000, CHECKPOINT, api_name=answer), "answer"),
        Case("edit_scene without a scene (issue: &#x27;)", lambda s: _edit_message(s.fresh().predict("red", "move", 10, 10, "blue", api_name="/edit_scene")), "answer"),
    ]


def _is_scene_answer(reply: Any) -> Any:
    """/answer's dict or /predict's outputs, answered by a Sort-of-CLEVR model (not the photo model)."""
    answer = reply.get("answer") if isinstance(reply, dict) else reply[1].get("label")
    if answer not in soc_labels():
        raise Refused(f"answered by the wrong model: {answer!r}")
    return {"answer": answer}


def _edit_message(reply: Any) -> str:
    """The editor's message among /edit_scene's outputs (a refused edit is a message, not an error), checked plain."""
    message = next((x for x in reply if isinstance(x, str) and "New random scene" in x), None)
    if message is None or "&#" in message:
        raise Refused(f"no plain-text message: {message!r}")
    return message


def soc_labels() -> tuple[str, ...]:
    from mmdemo.config import ANSWERS

    return ANSWERS


def run_case(s: Session, case: Case, pid: int) -> Result:
    """One hostile request: outcome, seconds and peak memory; then whether the server still answers."""
    reset_peak_rss(pid)
    before = _rss_now(pid)
    started = time.perf_counter()
    try:
        reply = case.send(s)
        outcome, message = "answered", _short(reply)
    except TimeoutError:
        outcome, message = "hung", f"no reply in {s.timeout:.0f} s"
    except Exception as e:  # noqa: BLE001 - every refusal is recorded with what the client saw
        outcome, message = ("refused", str(e)) if str(e) else ("error", type(e).__name__)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb(pid) - before
    alive = _alive(s)
    if case.expect == "answer":
        right = outcome == "answered"
    else:
        right = outcome == "refused" and re.search(case.expect, message) is not None
    ok = right and alive and peak <= PEAK_BAR_MB and outcome != "hung"
    return Result(case.name, outcome, " ".join(message.split())[:160], round(seconds, 2), round(peak, 1), alive, ok)


def _rss_now(pid: int) -> float:
    from mmdemo.experiments.serve_bench import _rss_mb

    return _rss_mb(pid)


def _alive(s: Session) -> bool:
    try:
        return s.predict(s.scene, QUESTION, CHECKPOINT, api_name="/answer")["answer"] in soc_labels()
    except Exception:  # noqa: BLE001 - a server that cannot answer is the finding
        return False


def _short(reply: Any) -> str:
    if isinstance(reply, dict) and "answer" in reply:
        return f"answer {reply['answer']!r}"
    if isinstance(reply, list) and len(reply) == 1:  # /call's data list
        return _short(reply[0])
    if isinstance(reply, (list, tuple)):
        return f"{len(reply)} outputs"
    return str(reply)[:80]


def run(timeout: float) -> list[Result]:
    with launched_app() as (proc, url), tempfile.TemporaryDirectory() as tmp:
        s = Session(url, Path(tmp), timeout)
        _alive(s)  # warm up: the default model and its first question
        return [run_case(s, case, proc.pid) for case in cases(s)]


def table(results: list[Result]) -> str:
    """The markdown table docs/HOSTILE.md records."""
    lines = ["| input | outcome | message / answer | s | server peak +MB | still answers | ok |", "|---|---|---|---|---|---|---|"]
    for r in results:
        message = r.message.replace("|", "/")
        lines.append(f"| {r.case} | {r.outcome} | {message} | {r.seconds:.2f} | {r.peak_mb:.0f} | {'yes' if r.alive else 'NO'} | {'yes' if r.ok else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmdemo.experiments.hostile_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a call may take before it counts as a hang (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON object (last line)")
    args = parser.parse_args(argv)
    results = run(args.timeout)
    print(table(results))
    worst = max(r.peak_mb for r in results)
    print(f"limits: upload {MAX_FILE_BYTES // 2**20} MB, request body {MAX_REQUEST_BYTES / 2**20:.1f} MB; worst peak +{worst:.0f} MB (bar {PEAK_BAR_MB:.0f} MB)")
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "worst_peak_mb": worst, "all_ok": all(r.ok for r in results)}))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
