"""Fake CUDA graphs: captured work, and instantiated executables that replay it on a stream."""

from __future__ import annotations

from tests.support.fakecuda.stream import Work


class Graphs:
    """Captured graphs and their instantiated executables."""

    def __init__(self) -> None:
        self.graphs: dict[int, list[Work]] = {}
        self.execs: dict[int, list[Work]] = {}
