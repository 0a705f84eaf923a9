"""``IProgressMonitor``, and the build phases the fake builder reports through it, as TensorRT does.

The application subclasses ``IProgressMonitor`` (calling ``IProgressMonitor.__init__(self)``,
as NVIDIA's ``simple_progress_monitor`` sample does) and sets it as
``IBuilderConfig.progress_monitor``. The header's contract (``NvInfer.h``, TensorRT 10.16):
``phase_start(phase_name, parent_phase, num_steps)`` with ``parent_phase`` None for a top-level
phase and ``num_steps`` positive; ``step_complete(phase_name, step)`` with ``step`` increasing
through ``[0, num_steps)``, returning False to stop the build (``build_serialized_network`` then
returns None); ``phase_finish(phase_name)``, which may come before every step was reported (a
cancelled build finishes its open phases, innermost first). Phase names here are those of the
sample's documented output ("Building engine", "Building engine from subgraph", "Computing
profile costs", "Timing graph nodes", "Finding fastest tactic for <layer>", "Measuring tactic
time"); NVIDIA says they may change between versions. Layers whose timing is in the timing
cache are not timed again, so a cached build reports no "Finding fastest tactic" phase for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.support.faketrt.strict import Strict

#: Tactics the fake times per layer that the timing cache does not know.
TACTICS_PER_LAYER = 2


class IProgressMonitor(Strict):
    """Subclass it and implement the three callbacks; call ``IProgressMonitor.__init__(self)``."""

    def __init__(self) -> None:
        pass

    def phase_start(self, phase_name: str, parent_phase: str, num_steps: int) -> None:
        raise NotImplementedError("IProgressMonitor.phase_start must be overridden")

    def step_complete(self, phase_name: str, step: int) -> bool:
        raise NotImplementedError("IProgressMonitor.step_complete must be overridden")

    def phase_finish(self, phase_name: str) -> None:
        raise NotImplementedError("IProgressMonitor.phase_finish must be overridden")


class Cancelled(Exception):
    """``step_complete`` returned False: the build stops."""


class _Phases:
    """Open phases, so a cancelled build can finish them innermost first."""

    def __init__(self, monitor: Any) -> None:
        self.monitor, self.open = monitor, []

    def start(self, name: str, parent: str | None, steps: int) -> None:
        self.monitor.phase_start(name, parent, steps)
        self.open.append(name)

    def step(self, name: str, step: int) -> None:
        if self.monitor.step_complete(name, step) is False:
            raise Cancelled

    def finish(self, name: str) -> None:
        self.open.remove(name)
        self.monitor.phase_finish(name)

    def finish_all(self) -> None:
        for name in reversed(list(self.open)):
            self.finish(name)


def report_build(monitor: Any, layers: Sequence[str], cached: Sequence[bool]) -> bool:
    """Drive ``monitor`` through one build of ``layers`` (``cached[i]``: layer i's timing is cached).

    Returns False when the monitor cancelled the build. Without a monitor there is nothing to report.
    """
    if monitor is None:
        return True
    phases = _Phases(monitor)
    top, sub, costs, timing = (
        "Building engine",
        "Building engine from subgraph",
        "Computing profile costs",
        "Timing graph nodes",
    )
    try:
        phases.start(top, None, 4)
        phases.step(top, 0)  # the network is optimized
        phases.step(top, 1)  # the graph is compiled
        phases.start(sub, top, 1)
        phases.start(costs, sub, 1)
        phases.start(timing, costs, len(layers))
        for index, (layer, hit) in enumerate(zip(layers, cached, strict=True)):
            if not hit:
                tactic = f"Finding fastest tactic for {layer}"
                phases.start(tactic, timing, TACTICS_PER_LAYER)
                for step in range(TACTICS_PER_LAYER):
                    phases.start("Measuring tactic time", tactic, 1)
                    phases.step("Measuring tactic time", 0)
                    phases.finish("Measuring tactic time")
                    phases.step(tactic, step)
                phases.finish(tactic)
            phases.step(timing, index)
        phases.finish(timing)
        phases.step(costs, 0)
        phases.finish(costs)
        phases.step(sub, 0)
        phases.finish(sub)
        phases.step(top, 2)  # the engine is assembled
        phases.step(top, 3)  # and serialized
        phases.finish(top)
    except Cancelled:
        phases.finish_all()
        return False
    return True
