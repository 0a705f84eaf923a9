"""``make_tensorrt``: one fake ``tensorrt`` module, 10.16-shaped or 11.4-shaped.

The module holds only names the real module of that version has; its classes are subclasses
of the shared bases (one module per concept in this package) bound to the module's
:class:`~tests.support.faketrt.env.Env`, and its enums carry the values of that major's
headers. What only one major has is added to that major's subclasses here.
"""

from __future__ import annotations

import types

from tests.support.fakecuda import FakeCuda
from tests.support.faketrt.builder import Builder
from tests.support.faketrt.builder_config import IBuilderConfig, IOptimizationProfile
from tests.support.faketrt.engine import DEVICE_MEMORY, ICudaEngine, IExecutionContext
from tests.support.faketrt.enums import make_enum
from tests.support.faketrt.env import Env
from tests.support.faketrt.inspector import EngineInspector
from tests.support.faketrt.logger import ILogger
from tests.support.faketrt.memory import IHostMemory
from tests.support.faketrt.network import Dims, INetworkDefinition, ITensor
from tests.support.faketrt.parser import OnnxParser, ParserError
from tests.support.faketrt.progress import IProgressMonitor
from tests.support.faketrt.refitter import OnnxParserRefitter, Refitter
from tests.support.faketrt.runtime import Runtime, nptype, volume
from tests.support.faketrt.timing_cache import ITimingCache, TimingCacheKey

CLASSES = (
    ILogger,
    Builder,
    INetworkDefinition,
    ITensor,
    OnnxParser,
    ParserError,
    IBuilderConfig,
    IOptimizationProfile,
    ITimingCache,
    TimingCacheKey,
    IProgressMonitor,
    IHostMemory,
    Runtime,
    ICudaEngine,
    IExecutionContext,
    EngineInspector,
    Refitter,
    OnnxParserRefitter,
)
ENUMS = (
    "BuilderFlag",
    "NetworkDefinitionCreationFlag",
    "MemoryPoolType",
    "HardwareCompatibilityLevel",
    "TensorIOMode",
    "DataType",
    "ErrorCode",
    "ExecutionContextAllocationStrategy",
    "ProfilingVerbosity",
    "LayerInformationFormat",
    "Severity",
)

#: Members that only TensorRT 10.x has (deprecated there, removed in 11.x).
TEN_ONLY = {
    "Builder": {"platform_has_fast_fp16": property(lambda self: True)},
    "ICudaEngine": {"device_memory_size": property(lambda self: DEVICE_MEMORY)},
}


def make_tensorrt(major: str, cuda: FakeCuda | None, version: str | None = None) -> types.ModuleType:
    """A fake ``tensorrt`` module shaped like TensorRT ``major`` ("10" or "11"), of ``version`` (default: the
    recorded one; another release of the same major, for tests of version compatibility)."""
    env = Env(major, cuda, version_override=version)
    for name in ENUMS:
        env.enums[name] = make_enum(major, name)
    severity = env.enums["Severity"]
    for base in CLASSES:
        members: dict = {"_env": env, "__doc__": base.__doc__}
        if major == "10":
            members.update(TEN_ONLY.get(base.__name__, {}))
        if base is ILogger:
            # The logger's severities: a nested enum, and each value as a class attribute.
            members["Severity"] = severity
            members.update({n: getattr(severity, n) for n in ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")})
        env.classes[base.__name__] = type(base.__name__, (base,), members)

    module = types.ModuleType("tensorrt")
    module.__doc__ = f"fake tensorrt {env.version} (tests/support/faketrt)"
    module.__version__ = env.version
    module._fake_env = env
    data_type = env.enums["DataType"]
    names = {
        **env.classes,
        **{name: enum for name, enum in env.enums.items() if name != "Severity"},
        "Dims": Dims,
        "float32": data_type.FLOAT,
        "float16": data_type.HALF,
        "int8": data_type.INT8,
        "int32": data_type.INT32,
        "nptype": nptype,
        "volume": volume,
    }
    for name, value in names.items():
        setattr(module, name, value)
    return module
