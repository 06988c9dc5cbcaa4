"""Where a decode's time goes: torch.profiler's top operators by self time."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

from torch.profiler import ProfilerActivity, profile

PROFILER_CHATTER = ("STAGE:", "ActivityProfilerController", "Profiler", "kineto", "USDT:")
"""Lines the native profiler writes to stdout/stderr on its own (not ours to print)."""


@contextlib.contextmanager
def native_output_filtered() -> Iterator[None]:
    """Capture what C++ writes to file descriptors 1 and 2 (Python's redirect cannot see it) and pass on
    every line except the profiler's own chatter, so `imf bench` prints only its table."""
    saved, captured = [], []
    try:
        for fd in (1, 2):
            sys.stdout.flush() if fd == 1 else sys.stderr.flush()
            tmp = tempfile.TemporaryFile(mode="w+b")
            saved.append(os.dup(fd))
            captured.append(tmp)
            os.dup2(tmp.fileno(), fd)
    except OSError:  # no real descriptors (an embedding host): run unfiltered
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd)
            os.close(old)
        yield
        return
    try:
        yield
    finally:
        for fd, old, tmp in zip((1, 2), saved, captured):
            os.dup2(old, fd)
            os.close(old)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode(errors="replace").splitlines()
                    if line.strip() and not any(mark in line for mark in PROFILER_CHATTER)]
            tmp.close()
            if kept:
                print("\n".join(kept), file=sys.stdout if fd == 1 else sys.stderr)


def top_ops(fn: Callable[[], object], rows: int = 12) -> list[dict]:
    """Run ``fn`` once under the profiler; the ``rows`` operators with the most self CPU time."""
    with native_output_filtered(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
             "calls": e.count} for e in ranked]
