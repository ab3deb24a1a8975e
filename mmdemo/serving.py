"""Serving guards for the app, in plain ASGI (no gradio): a request-body cap and a drain on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mmdemo.limits import DRAIN_SECONDS, MAX_FILE_BYTES, MAX_REQUEST_BYTES

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

API = "/gradio_api"
UPLOAD = f"{API}/upload"  # multipart, streamed to disk; gradio checks each file against max_file_size
NEW_WORK = (f"{API}/queue/join", f"{API}/call/", f"{API}/run/", f"{API}/api/", UPLOAD)  # POSTs that start something
UNCOUNTED = (f"{API}/heartbeat/",)  # a browser tab holds one open as long as it is open: not work in flight


class Drain:
    """Counts the HTTP requests in flight; once stopping is set, new work is refused."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._open = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self._open += 1

    def leave(self) -> None:
        with self._lock:
            self._open -= 1

    def open_requests(self) -> int:
        with self._lock:
            return self._open


async def _reply(send: Send, status: int, message: str) -> None:
    """A small JSON error response, {"detail": message}, as FastAPI writes them."""
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """ASGI: a body over max_body is refused (413) before it is parsed, except uploads (gradio caps each file);
    while draining, new work is refused (503); every other request is counted in flight."""

    def __init__(self, app: Callable, drain: Drain, max_body: int = MAX_REQUEST_BYTES) -> None:
        self.app, self.drain, self.max_body = app, drain, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if self.drain.stopping.is_set() and method == "POST" and path.startswith(NEW_WORK):
            await _reply(send, 503, "The server is shutting down and takes no new requests.")
            return
        if method in ("POST", "PUT", "PATCH") and not path.startswith(UPLOAD):
            receive = await self._bounded(scope, receive, send)
            if receive is None:
                return
        counted = not path.startswith(UNCOUNTED)
        if counted:
            self.drain.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            if counted:
                self.drain.leave()

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """receive for a body within max_body; None after answering 413 (or when the client went away)."""
        too_large = (
            f"The request body is over {self.max_body // 2**20} MB. Send files through {UPLOAD}"
            f" (up to {MAX_FILE_BYTES // 2**20} MB each)."
        )
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body:
                await _reply(send, 413, too_large)
                return None
            return receive  # the server holds the client to its content-length
        chunks, size = [], 0  # no length (chunked): read up to the cap, then replay
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            size += len(message.get("body", b""))
            if size > self.max_body:
                await _reply(send, 413, too_large)
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> dict[str, Any]:
            return replay.pop() if replay else await receive()

        return replayed


def drain_seconds() -> float:
    """How long SIGTERM waits for accepted requests: MMDEMO_DRAIN_SECONDS, else DRAIN_SECONDS."""
    value = os.environ.get("MMDEMO_DRAIN_SECONDS", "")
    try:
        seconds = float(value) if value else DRAIN_SECONDS
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 86_400:
        raise SystemExit(f"MMDEMO_DRAIN_SECONDS must be a number of seconds, got {value!r}")
    return seconds


def serve_until_stopped(drain: Drain, pending: Callable[[], int], close: Callable[[], None], timeout: float | None = None) -> int:
    """Block the main thread until SIGTERM, then drain: refuse new work, let accepted requests finish (at most
    timeout seconds, default drain_seconds()), close, and log one line; returns the exit code. Ctrl-C closes at once."""
    timeout = drain_seconds() if timeout is None else timeout
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        close()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    drain.stopping.set()
    started = time.monotonic()
    in_flight = pending() or drain.open_requests()  # accepted events; else open HTTP requests
    while (busy := pending() + drain.open_requests()) and time.monotonic() - started < timeout:
        time.sleep(0.05)
    close()
    took = time.monotonic() - started
    cut = f", {busy} cut off after {timeout:.0f} s" if busy else ""
    sys.stderr.write(f"mmdemo: SIGTERM: stopped taking requests; {in_flight} in flight, drained in {took:.1f} s{cut}; exit 0\n")
    sys.stderr.flush()
    return 0


def pending_events(blocks: Any) -> int:
    """Events a gradio Blocks has accepted and not yet delivered (queued, running or being sent back)."""
    pending = getattr(getattr(blocks, "_queue", None), "pending_event_ids_session", {})
    return sum(len(ids) for ids in list(pending.values()))
