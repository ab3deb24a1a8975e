"""glibc malloc settings (mmdemo.malloc): the server's arena cap, the CLI's kept memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

ARENAS_PROBE = """
import ctypes, sys, threading
import numpy as np
from mmdemo.malloc import limit_malloc_arenas
if sys.argv[1] == "capped":
    assert limit_malloc_arenas(2)
def work():
    for _ in range(300):
        bufs = [np.ones(n) for n in (1000, 20000, 50000)]  # the sizes of a request's short-lived buffers
        del bufs
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.open_memstream.restype = ctypes.c_void_p
buf, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(buf.value.decode().count("<heap nr="))
"""


def test_the_server_keeps_its_threads_to_two_malloc_arenas() -> None:
    """The app caps glibc's arenas before its worker threads start; without the cap 8 busy threads get more."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    heaps = {}
    for mode in ("capped", "free"):
        r = subprocess.run([sys.executable, "-c", ARENAS_PROBE, mode], check=False, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        heaps[mode] = int(r.stdout.split()[-1])
    assert heaps["capped"] <= 2 < heaps["free"], heaps


FAULTS_PROBE = """
import resource, sys
import numpy as np
from mmdemo.malloc import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
rng = np.random.default_rng(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    step = [np.ones(int(n)) for n in rng.integers(10_000, 3_000_000, 12)]  # 80 kB to 24 MB, other sizes each step
    del step
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_kept_memory_is_reused_instead_of_faulted_in_again() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults = {}
    for mode in ("kept", "default"):
        r = subprocess.run([sys.executable, "-c", FAULTS_PROBE, mode], check=False, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        faults[mode] = int(r.stdout.split()[-1])
    assert faults["kept"] * 5 < faults["default"], faults


def test_kept_memory_changes_no_trained_weight(tmp_path: Path) -> None:
    """The CLI keeps freed memory (python -m mmdemo); with a MALLOC_ variable set it leaves glibc alone."""
    tiny = ["--text-encoder", "learned", "--train-images", "8", "--batch-images", "4", "--max-steps", "3",
            "--no-evaluate", "--threads", "1", "--no-attn-wait"]
    weights = []
    for name, extra in (("kept", {}), ("glibc", {"MALLOC_TRIM_THRESHOLD_": "131072"})):
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, **extra}
        out = tmp_path / name
        r = subprocess.run([sys.executable, "-m", "mmdemo", "train", *tiny, "--out", str(out)],
                           check=False, capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        weights.append((out / "model.safetensors").read_bytes())
    assert weights[0] == weights[1]
