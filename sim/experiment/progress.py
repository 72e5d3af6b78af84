"""Progress of a sweep: a tqdm bar on a terminal, plain periodic lines otherwise
(cluster job logs), and a summary line at the end."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO


@dataclass
class Tally:
    total: int  # runs in the sweep
    skipped: int  # already done before this session (resume)
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        state = "interrupted" if self.interrupted else "finished"
        lines = f"{state}: {self.done} runs in {self.seconds:.1f} s ({self.rate:.1f} runs/s); " \
                f"{self.ok} ok, {self.failed} failed"
        if self.skipped:
            lines += f"; {self.skipped} already done before"
        left = self.total - self.skipped - self.done
        if left > 0:
            lines += f"; {left} not run (finish with --resume)"
        return lines


class Progress:
    def __init__(self, total: int, skipped: int = 0, *, stream: TextIO | None = None, tty: bool | None = None,
                 every: float = 10.0, label: str = "sweep"):
        self.stream = stream or sys.stderr
        self.tally = Tally(total, skipped)
        self.todo = total - skipped
        self.every = every
        self.label = label
        self.started = time.perf_counter()
        self.last_log = self.started
        self.tty = self.stream.isatty() if tty is None else tty
        self.bar = None

    def start(self) -> None:
        """Show the bar (on a terminal) and start the clock: call when the first run is handed out."""
        self.started = self.last_log = time.perf_counter()
        if self.tty and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.tally.total, initial=self.tally.skipped, unit="run", file=self.stream,
                            desc=self.label, dynamic_ncols=True, smoothing=0.1)
            self.bar.set_postfix(failed=0)

    def set_total(self, total: int, skipped: int | None = None) -> None:
        """The runs planned so far (a replicate rule adds blocks as the sweep goes)."""
        self.tally.total = total
        if skipped is not None:
            self.tally.skipped = skipped
        self.todo = self.tally.total - self.tally.skipped
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def update(self, status: str) -> None:
        if status == "ok":
            self.tally.ok += 1
        else:
            self.tally.failed += 1
        now = time.perf_counter()
        self.tally.seconds = now - self.started
        if self.bar is not None:
            if status != "ok":
                self.bar.set_postfix(failed=self.tally.failed, refresh=False)
            self.bar.update(1)
        elif now - self.last_log >= self.every:
            self.last_log = now
            self._log()

    def note(self, line: str) -> None:
        """A line about the sweep (e.g. waiting for workers), printed above the bar on a terminal."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _log(self) -> None:
        t = self.tally
        left = self.todo - t.done
        eta = left / t.rate if t.rate > 0 else float("nan")
        done = t.skipped + t.done
        print(f"{self.label}: {done}/{t.total} runs ({100 * done / max(t.total, 1):.0f}%), {t.failed} failed, "
              f"{t.rate:.1f} runs/s, ETA {_clock(eta)}", file=self.stream, flush=True)

    def close(self, *, interrupted: bool = False) -> Tally:
        self.tally.seconds = time.perf_counter() - self.started
        self.tally.interrupted = interrupted
        if self.bar is not None:
            self.bar.close()
        print(f"{self.label} {self.tally.line()}", file=self.stream, flush=True)
        return self.tally


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
