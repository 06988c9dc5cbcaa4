"""Progress bars for long work: tqdm on a terminal, one plain line every few percent in a log file.

tqdm redraws one line with carriage returns, which a log file keeps as one ever-growing line, and with
``disable=None`` it prints nothing at all when stderr is not a terminal (a training run logged nothing for
minutes). ``progress_bar`` keeps tqdm's bar and API, and when stderr is not a terminal writes each refresh
as its own line: every ``LOG_PERCENT`` percent of a known total, else every ``LOG_SECONDS`` seconds.
"""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from tqdm.auto import tqdm

LOG_PERCENT = 5
LOG_SECONDS = 30.0


class _Lines:
    """A text stream for tqdm that turns each carriage-return redraw into one line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class _LogBar(tqdm):
    """tqdm writing to a log: a postfix change waits for the next due line instead of printing one.

    tqdm's monitor thread also sets ``miniters = 1`` once a bar has not printed for ``maxinterval``
    seconds (a slow step), after which every update printed a line; ``maxinterval=inf`` turns that off.
    """

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        super().set_postfix_str(s, refresh=False)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``; ``enabled=False``: a silent bar with the same API."""
    if not enabled:
        return tqdm(iterable, disable=True, **kwargs)
    stream = kwargs.pop("file", None) or sys.stderr
    if _is_terminal(stream):
        return tqdm(iterable, file=stream, **kwargs)
    total = kwargs.get("total")
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if total:  # a line every LOG_PERCENT percent (and at the end)
        kwargs.update(miniters=max(1, math.ceil(total * LOG_PERCENT / 100)), mininterval=0.0)
        kwargs.setdefault("bar_format", "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} "
                                        "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")
    else:
        kwargs.update(mininterval=LOG_SECONDS)
        kwargs.setdefault("bar_format", "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]")
    kwargs.pop("dynamic_ncols", None)
    return _LogBar(iterable, file=_Lines(stream), ascii=True, maxinterval=math.inf, **kwargs)
