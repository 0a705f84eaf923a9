"""``EngineInspector``: the layer information of a fake engine, as ``IEngineInspector`` gives it.

What it prints depends on the ``ProfilingVerbosity`` the engine was built with (``NvInferRuntime.h``):
``LAYER_NAMES_ONLY`` (TensorRT's default) gives layer names only (each layer a JSON string; the
engine a ``{"Layers": [names], "Bindings": [...]}`` document, which trt-engine-explorer refuses:
"Make sure to enable detailed ProfilingVerbosity"), ``DETAILED`` the records of :mod:`.layers`,
``NONE`` no layer (an empty list: the fake's guess, the header says only that nothing is printed).
Without an execution context whose input shape is set, "values dependent on input shapes will be
displayed as -1 and format information will not be shown": the dynamic batch stays -1 and each
``Format/Datatype`` reads ``N/A`` (the value Polygraphy's ``inspect`` skips). Only the JSON
format is modelled.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.faketrt.strict import Strict

HIDDEN_FORMAT = "N/A"


class EngineInspector(Strict):
    """Layer information of one engine, concrete once an execution context with input shapes is set."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._context: Any = None

    @property
    def execution_context(self) -> Any:
        return self._context

    @execution_context.setter
    def execution_context(self, context: Any) -> None:
        if context is not None and getattr(context, "_engine", None) is not self._engine:
            raise TypeError("fake tensorrt: the execution context belongs to another engine")
        self._context = context

    def _verbosity(self) -> str:
        return self._engine._h["profiling_verbosity"]

    def _json_only(self, format: Any) -> None:
        if format != self._env.enum("LayerInformationFormat").JSON:
            raise NotImplementedError("fake tensorrt: only LayerInformationFormat.JSON is modelled")

    def _record(self, index: int) -> Any:
        layer = self._engine._h["layers"][index]
        if self._verbosity() != "DETAILED":
            return layer["Name"]
        shape = self._context._shape if self._context is not None else None
        record = copy.deepcopy(layer)
        for tensor in [*record["Inputs"], *record["Outputs"]]:
            if shape is None:
                tensor["Format/Datatype"] = HIDDEN_FORMAT
            elif tensor["Dimensions"] and tensor["Dimensions"][0] == -1:
                tensor["Dimensions"][0] = shape[0]
        return record

    def get_layer_information(self, layer_index: int, format: Any) -> str:
        self._json_only(format)
        return json.dumps(self._record(int(layer_index)))

    def get_engine_information(self, format: Any) -> str:
        self._json_only(format)
        count = 0 if self._verbosity() == "NONE" else len(self._engine._h["layers"])
        layers = [self._record(i) for i in range(count)]
        return json.dumps({"Layers": layers, "Bindings": self._engine._h["bindings"]})
