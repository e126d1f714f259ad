"""Progress of long loops that are not training epochs (reading many files, predicting many sequences or
windows): a tqdm bar on a terminal, and where output is piped to a log one plain line every `EVERY` seconds.
Nothing is shown for loops that end within `QUIET` seconds."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

EVERY = 10.0
QUIET = 2.0


class Progress:
    """Counts done items of a loop (`total` when known) and says how far it is, on standard error.

    Args:
        what: what is counted, e.g. "files read" or "windows".
        total: the number of items, or None.
    """

    def __init__(self, what: str, total: int | None = None) -> None:
        self.what, self.total, self.done = what, total, 0
        self.start = self.last = time.monotonic()
        self.bar: tqdm | None = None

    def step(self, count: int = 1) -> None:
        """`count` more items are done."""
        self.done += count
        now = time.monotonic()
        if now - self.start < QUIET:
            return
        if sys.stderr.isatty():
            if self.bar is None:
                self.bar = tqdm(total=self.total, initial=self.done - count, desc=self.what, leave=False)
            self.bar.update(count)
        elif now - self.last >= EVERY:
            self.last = now
            rate = self.done / (now - self.start)
            left = (f", about {(self.total - self.done) / rate:.0f} s left" if self.total and rate > 0 else "")
            of = f"/{self.total}" if self.total else ""
            print(f"{self.what}: {self.done}{of} ({rate:.1f}/s{left})", file=sys.stderr, flush=True)

    def close(self) -> None:
        """The loop ended: the bar goes."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
