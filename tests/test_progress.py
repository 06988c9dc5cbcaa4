"""Progress output: a tqdm bar on a terminal, plain lines every few percent in a log file."""

from __future__ import annotations

import io

from imf.progress import progress_bar


def test_a_log_file_gets_one_line_per_few_percent_and_no_carriage_returns():
    log = io.StringIO()  # not a terminal
    bar = progress_bar(total=100, desc="train", unit="step", file=log)
    for _ in range(100):
        bar.update(1)
    bar.close()
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert 20 <= len(lines) <= 23  # 0%, every 5%, the final state
    assert lines[-1].startswith("train: 100% 100/100")


def test_postfix_updates_and_slow_steps_do_not_add_lines():
    log = io.StringIO()
    bar = progress_bar(total=100, desc="train", unit="step", file=log)
    for i in range(100):
        bar.update(1)
        bar.set_postfix(loss=f"{1.0 / (i + 1):.3f}")  # the trainer sets its postfix every few steps
        bar.last_print_t -= 3600.0  # as after a slow step: tqdm's monitor would drop miniters to 1
        assert not (bar.miniters > 1 and bar._time() - bar.last_print_t >= bar.maxinterval)
    bar.close()
    lines = log.getvalue().splitlines()
    assert 20 <= len(lines) <= 23
    assert "loss=0.010" in lines[-1]


def test_unknown_totals_and_disabled_bars():
    log = io.StringIO()
    for _ in progress_bar(iter(range(5)), desc="fit", file=log):
        pass
    assert log.getvalue().splitlines()[0].startswith("fit: 0")
    quiet = io.StringIO()
    for _ in progress_bar(range(5), enabled=False, file=quiet):
        pass
    assert quiet.getvalue() == ""


def test_a_terminal_keeps_the_tqdm_bar():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    bar = progress_bar(total=10, desc="encode", file=term)
    bar.update(10)
    bar.close()
    assert "\r" in term.getvalue() and "|" in term.getvalue()
