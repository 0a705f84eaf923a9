"""``Dims``, ``ITensor`` and ``INetworkDefinition``: what the parser fills and the builder reads."""

from __future__ import annotations

from typing import Any

from tests.support.faketrt.strict import Strict


class Dims:
    """``tensorrt.Dims``: a sequence of ints."""

    MAX_DIMS = 8

    def __init__(self, shape: Any = ()) -> None:
        self._d = tuple(int(x) for x in shape)

    def __len__(self) -> int:
        return len(self._d)

    def __getitem__(self, i: Any) -> Any:
        return self._d[i]

    def __iter__(self) -> Any:
        return iter(self._d)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, Dims | tuple | list) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._d)

    def __repr__(self) -> str:
        return f"Dims({list(self._d)})"


class ITensor(Strict):
    """A network input or output."""

    def __init__(self, name: str, shape: tuple, dtype: Any) -> None:
        self._name, self._shape, self._dtype = name, Dims(shape), dtype

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> Dims:
        return self._shape

    @property
    def dtype(self) -> Any:
        return self._dtype


class INetworkDefinition(Strict):
    """A network: creation flags, and the ONNX graph the parser put into it."""

    def __init__(self, flags: int) -> None:
        self._flags = int(flags)
        creation = self._env.enum("NetworkDefinitionCreationFlag")
        # TensorRT 11 networks are always strongly typed; on 10.x the creation flag asks for it.
        self._strongly_typed = self._env.major != "10" or bool(self._flags & (1 << int(creation.STRONGLY_TYPED)))
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._onnx: bytes | None = None

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_input(self, index: int) -> ITensor:
        return self._inputs[index]

    def get_output(self, index: int) -> ITensor:
        return self._outputs[index]

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))
