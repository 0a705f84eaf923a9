"""Build progress: TensorRT's ``IProgressMonitor`` callbacks, handed on as :class:`PhaseEvent` values.

TensorRT reports a build as nested phases (``phase_start(name, parent, steps)``,
``step_complete(name, step)`` with ``step`` counting from 0, ``phase_finish(name)``; names such
as "Building engine" or "Timing graph nodes" may change between versions). The engine code only
forwards them to a callback; the command line decides whether and how to show them.

The callbacks run inside TensorRT, which cannot take a Python exception: whatever the callback
raises is logged once and the display is dropped, and a Ctrl-C that arrives during a callback
cancels the build (``step_complete`` returns False) so :func:`arcface_trt.engine.builder` can
end it cleanly. A monitor is always attached: it is also what lets Ctrl-C stop a long build.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arcface_trt.engine.trt_api import subclass_of, trt

log = logging.getLogger("arcface_trt.engine")

START, STEP, FINISH = "start", "step", "finish"


@dataclass(frozen=True)
class PhaseEvent:
    """One progress report of a build."""

    #: ``start``, ``step`` or ``finish``.
    kind: str
    phase: str
    #: ``start``: the enclosing phase, None at the top.
    parent: str | None = None
    #: ``start``: how many steps the phase has; ``step``: how many are done.
    steps: int = 0


OnProgress = Callable[[PhaseEvent], None]


def _monitor_class(base: type) -> type:
    """A ``trt.IProgressMonitor`` subclass that forwards to an :data:`OnProgress` callback."""

    class _ForwardingMonitor(base):  # type: ignore[valid-type,misc]
        def __init__(self, sink: OnProgress | None) -> None:
            base.__init__(self)
            self._sink = sink
            self._cancelled = False

        def _send(self, event: PhaseEvent) -> None:
            if self._sink is None:
                return
            try:
                self._sink(event)
            except KeyboardInterrupt:
                self._cancelled = True
            except Exception as exc:  # TensorRT cannot take it: report once, stop showing progress
                log.warning("build progress display failed (%s: %s); building on without it", type(exc).__name__, exc)
                self._sink = None

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._send(PhaseEvent(START, phase_name, parent_phase, int(num_steps)))

        def step_complete(self, phase_name: str, step: int) -> bool:
            self._send(PhaseEvent(STEP, phase_name, steps=int(step) + 1))
            return not self._cancelled

        def phase_finish(self, phase_name: str) -> None:
            self._send(PhaseEvent(FINISH, phase_name))

        @property
        def cancelled(self) -> bool:
            return self._cancelled

    return _ForwardingMonitor


def progress_monitor(on_progress: OnProgress | None) -> Any:
    """A ``trt.IProgressMonitor`` forwarding to ``on_progress``; its ``cancelled`` says whether Ctrl-C stopped it."""
    return subclass_of(trt.IProgressMonitor, _monitor_class)(on_progress)
