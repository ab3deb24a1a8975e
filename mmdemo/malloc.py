"""glibc malloc settings for this process: no-ops off Linux, without glibc's mallopt, or where the matching
MALLOC_* environment variable is set (yours wins). Only entry points call them (python -m mmdemo, app.py),
never an import; APPLIED records what was set."""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameters behind MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, MALLOC_MMAP_THRESHOLD_, MALLOC_ARENA_MAX
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's largest allowed M_MMAP_THRESHOLD on 64-bit
KEEP_BYTES = 16 * 1024**3  # heap top kept before trimming: effectively never trim
TOP_PAD_BYTES = 256 * 1024**2  # extra heap asked for at each growth


APPLIED: dict[int, int] = {}  # every mallopt this process made through here (param -> value): empty until an entry point asks


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        done = bool(ctypes.CDLL("libc.so.6").mallopt(param, value))
    except (OSError, AttributeError):
        return False
    if done:
        APPLIED[param] = value
    return done


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX does, before the server starts its threads.

    glibc gives threads that contend for memory arenas of their own (up to 8 per core); the server's worker
    threads then spread short-lived buffers (images, maps, PNGs) over many arenas, and resident memory kept
    creeping up over thousands of requests (+20 MB per 1,000 after the first 1,000; capped at 2: +2 to +7 MB,
    docs/APP.md). False where MALLOC_ARENA_MAX is set already or mallopt is not there."""
    return not os.environ.get("MALLOC_ARENA_MAX") and _mallopt(M_ARENA_MAX, arenas)


def keep_freed_memory() -> bool:
    """Keep freed memory for the next allocation instead of handing it back to the kernel (the CLI's
    commands: training, evaluation, benchmarks; not the server, whose memory must stay flat).

    torch allocates each step's CPU tensors with malloc. By default glibc maps blocks above its mmap threshold
    (from 128 kB, raised as blocks are freed) straight from the kernel and unmaps them when freed, and trims the
    heap's free top, so every step faults the same memory in again, zero-filled by the kernel: 83 M page faults
    and 170 s of system time in a 31-minute training run. With the threshold at its 32 MB maximum and no
    trimming: 1.9 M faults and 36 s, about half a minute less in all; a 200-step run 5.7% faster
    (docs/RESULTS.md, "Training time").
    Where the memory comes from changes no number: the same run gives bit-identical weights (tested).
    False where MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ is set or mallopt is not there."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    return all([_mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), _mallopt(M_TRIM_THRESHOLD, KEEP_BYTES),
                _mallopt(M_TOP_PAD, TOP_PAD_BYTES)])
