"""The models a drift-budget search tries: the low-precision model with some node groups kept in full precision.

:class:`Int8Candidates` calibrates once (:class:`~arcface_trt.precision.int8.PreparedQuantization`)
and quantizes with the kept groups' nodes left out; :class:`Fp16Candidates` converts to mixed
precision (:func:`~arcface_trt.precision.fp16.convert_to_fp16`) with them in the kept list. Both
start from the default recipe, whose embedding head is kept in full precision already
(``always_kept``), and group the rest by graph structure (:mod:`.groups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from arcface_trt.budget.groups import NodeGroup, node_groups
from arcface_trt.lazy import lazy_import
from arcface_trt.model.inspect import load_onnx
from arcface_trt.precision import fp16
from arcface_trt.precision.int8 import QUANTIZED_OPS, PreparedQuantization

onnx = lazy_import("onnx")


class Candidates:
    """What both precisions share: the groups, the nodes always kept, and the names of kept nodes."""

    precision = ""

    def __init__(self, model: Any, always_kept: Sequence[str], candidates: Iterable[str], work_dir: Path) -> None:
        self.always_kept = list(always_kept)
        self.groups: list[NodeGroup] = node_groups(model, [n for n in candidates if n not in set(always_kept)])
        self.work_dir = work_dir

    def kept_nodes(self, kept_groups: Iterable[int]) -> list[str]:
        """The candidate nodes of ``kept_groups``, in the graph's order."""
        chosen = set(kept_groups)
        return [node for group in self.groups if group.index in chosen for node in group.nodes]

    def nodes_by_precision(self, kept_groups: Sequence[int]) -> dict[str, int]:
        """How many candidate and always-kept nodes each precision computes, for ``kept_groups`` kept."""
        kept = len(self.kept_nodes(kept_groups))
        total = sum(len(group.nodes) for group in self.groups)
        return {self.precision: total - kept, "fp32": kept + len(self.always_kept)}

    def with_kept(self, name: str, kept_groups: Sequence[int]) -> Path:
        """The model with ``kept_groups`` in full precision and every other group in low precision."""
        raise NotImplementedError

    def with_only(self, name: str, group: int) -> Path:
        """The model with only ``group`` in low precision (everything else in full precision)."""
        raise NotImplementedError


class Int8Candidates(Candidates):
    """QDQ models from one calibration: the quantized op types' nodes of the kept groups are left in float."""

    precision = "int8"

    def __init__(self, quantization: PreparedQuantization) -> None:
        self.quantization = quantization
        model = load_onnx(quantization.prepared)
        compute = [node.name for node in model.graph.node if node.op_type in QUANTIZED_OPS]
        super().__init__(model, quantization.head, compute, quantization.work_dir)

    def with_kept(self, name: str, kept_groups: Sequence[int]) -> Path:
        """See :meth:`Candidates.with_kept`."""
        return self.quantization.quantize(name, exclude=self.kept_nodes(kept_groups))

    def with_only(self, name: str, group: int) -> Path:
        """See :meth:`Candidates.with_only`."""
        return self.quantization.quantize(name, only=self.groups[group].nodes)


class Fp16Candidates(Candidates):
    """Mixed-precision models: the kept groups' nodes join the embedding head in fp32."""

    precision = "fp16"

    def __init__(self, source: Path, work_dir: Path) -> None:
        self.source = Path(source)
        model = load_onnx(self.source)
        head = fp16.kept_fp32_nodes(model, None)  # names unnamed nodes as the conversion does
        super().__init__(model, head, [node.name for node in model.graph.node], work_dir)
        self._all = [node.name for node in model.graph.node]

    def with_kept(self, name: str, kept_groups: Sequence[int]) -> Path:
        """See :meth:`Candidates.with_kept`."""
        return self._convert(name, [*self.always_kept, *self.kept_nodes(kept_groups)])

    def with_only(self, name: str, group: int) -> Path:
        """See :meth:`Candidates.with_only`."""
        low = set(self.groups[group].nodes)
        return self._convert(name, [node for node in self._all if node not in low])

    def _convert(self, name: str, keep: list[str]) -> Path:
        return fp16.convert_to_fp16(self.source, self.work_dir / f"{name}.onnx", keep)
