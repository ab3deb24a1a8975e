"""Nothing happens at import: importing every module of the package leaves the environment, glibc malloc and
OpenMP's settings as they were; only the entry points (python -m mmdemo, app.py) set them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, os, pkgutil, sys
before = dict(os.environ)
import mmdemo
names = sorted(m.name for m in pkgutil.walk_packages(mmdemo.__path__, "mmdemo.") if m.name.rsplit(".", 1)[-1] != "__main__")
for name in names:
    __import__(name)
import mmdemo.__main__  # the entry point's module too: its settings wait for main()
import mmdemo.malloc
after = dict(os.environ)
changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
print(json.dumps({"modules": names, "changed": changed, "mallopt": mmdemo.malloc.APPLIED}))
"""


def _probe(env: dict[str, str]) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_every_module_changes_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "GOMP_", "OMP_", "MALLOC_"))}
    out = _probe(env)
    assert {"mmdemo.config", "mmdemo.text", "mmdemo.malloc", "mmdemo.model.encoders", "mmdemo.experiments.gpu_check"} <= set(out["modules"])
    assert out["changed"] == [], out["changed"]  # e.g. HF_HUB_OFFLINE, GOMP_SPINCOUNT were set at import once
    assert out["mallopt"] == {}, out["mallopt"]  # no malloc setting made by an import


def test_the_entry_point_sets_them() -> None:
    """The check above can fail: main() sets GOMP_SPINCOUNT (before torch loads) and glibc's kept memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOMP_", "OMP_", "MALLOC_"))}
    code = ("import os, sys; from mmdemo.__main__ import main; import mmdemo.malloc as m\n"
            "rc = main(['bench', '--runs', '0'])\n"  # refused before any work (exit 2), after the process settings
            "print(rc, os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules, sorted(m.APPLIED))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    rc, spin, _, applied = r.stdout.split(maxsplit=3)
    assert (rc, spin) == ("2", "10000") and applied != "[]", r.stdout


def _openmp_spin_count(args: list[str]) -> str:
    """GOMP_SPINCOUNT as libgomp itself took it when torch loaded it (OMP_DISPLAY_ENV prints its settings)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GOMP_", "OMP_"))}, "OMP_DISPLAY_ENV": "VERBOSE"}
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in r.stderr.splitlines() if "GOMP_SPINCOUNT =" in line]
    assert lines, r.stderr[-3000:]
    return lines[0].split("=", 1)[1].strip().strip("'")


def test_spin_count_reaches_openmp_under_python_m_mmdemo() -> None:
    """libgomp reads GOMP_SPINCOUNT once, when torch loads it: main() sets it before any command imports torch;
    importing the package (even the CLI's module) leaves libgomp its own default."""
    assert _openmp_spin_count(["-m", "mmdemo", "bench", "--runs", "0"]) == "10000"
    assert _openmp_spin_count(["-c", "import mmdemo.__main__, mmdemo.model, torch"]) != "10000"
