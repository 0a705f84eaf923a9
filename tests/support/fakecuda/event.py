"""Fake CUDA events: a timestamp taken when the event's place in its stream is reached."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Event:
    """One event: the stream it was last recorded on, its marker there, and when it completed."""

    stream: int | None = None
    marker: object | None = None
    completed_at: float | None = None

    def stamp(self) -> None:
        """Complete now (runs as the stream reaches the record)."""
        self.completed_at = time.perf_counter()
