"""Fake CUDA streams: work is queued and runs only when the stream is synchronised or queried.

As on a GPU, a host read of page-locked memory that a queued device-to-host copy will fill
sees the old contents until the stream is synchronised; an event recorded on the stream
completes only then. A stream being captured records its work into the graph instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Work = Callable[[], None]


@dataclass
class Stream:
    """One stream: pending work in order, and the capture state."""

    pending: list[Work] = field(default_factory=list)
    capturing: bool = False
    captured: list[Work] = field(default_factory=list)
    #: Set when an operation not allowed during capture was attempted: the capture fails at its end.
    invalidated: bool = False

    def enqueue(self, work: Work) -> None:
        """Queue ``work`` (or record it into the graph being captured)."""
        (self.captured if self.capturing else self.pending).append(work)

    def run_until(self, marker: Work | None = None) -> None:
        """Run the queued work in order, up to and including ``marker`` (all of it when None)."""
        while self.pending:
            work = self.pending.pop(0)
            work()
            if work is marker:
                return
