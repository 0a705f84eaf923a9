"""``Builder``: checks what TensorRT checks for this project's builds, and serializes a fake plan.

- no CUDA: ``Builder(logger)`` logs "CUDA initialization failure with error: 35" and raises
  ``TypeError`` (pybind11's "factory function returned nullptr"), as the real one does;
- the profile must cover every input and fixed dimensions exactly;
- precision flags are refused on a strongly typed network (10.x);
- a WORKSPACE pool under 16 MiB fails (the fake's stand-in for a build with no tactic);
- the layers are those :mod:`.layers` makes of the network for the flags and network type; each
  layer the timing cache does not know is timed (one entry added), and the build's phases go
  to the config's progress monitor (:mod:`.progress`), which may cancel it;
- ``AMPERE_PLUS`` builds on Ampere or newer GPUs only, ``SAME_COMPUTE_CAPABILITY`` on Turing or newer;
- ``STRIP_PLAN`` leaves the refittable weights out of the plan (:mod:`.refitter`); a refit flag or
  ``STRIP_PLAN`` makes the engine refittable; ``VERSION_COMPATIBLE`` embeds a (fake) lean runtime
  of :data:`LEAN_RUNTIME_BYTES` unless ``EXCLUDE_LEAN_RUNTIME``;
- every build is recorded in the module's build log (flags, network type, timing-cache decision).
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.support.faketrt import plan, progress
from tests.support.faketrt.builder_config import IBuilderConfig
from tests.support.faketrt.env import BuildRecord
from tests.support.faketrt.layers import engine_layers
from tests.support.faketrt.logger import log
from tests.support.faketrt.network import INetworkDefinition
from tests.support.faketrt.refitter import REFIT_FLAGS, strip_weights
from tests.support.faketrt.strict import Strict

MIN_WORKSPACE = 16 << 20
PRECISION_FLAGS = ("FP16", "BF16", "INT8", "FP8", "INT4", "FP4")
#: Size of the stand-in for the lean runtime a version-compatible plan carries.
LEAN_RUNTIME_BYTES = 1 << 20
#: Oldest GPU (compute capability) each hardware compatibility level builds on.
HARDWARE_LEVEL_MIN = {"AMPERE_PLUS": (8, 0), "SAME_COMPUTE_CAPABILITY": (7, 5)}


class Builder(Strict):
    """Creates networks, configs and profiles, and builds serialized plans."""

    def __init__(self, logger: Any) -> None:
        if self._env.device is None:
            log(self._env, logger, "ERROR", "CUDA initialization failure with error: 35")
            raise TypeError("pybind11::init(): factory function returned nullptr")
        self._logger = logger

    def create_network(self, flags: int = 0) -> Any:
        return self._env.new("INetworkDefinition", int(flags))

    def create_builder_config(self) -> Any:
        return self._env.new("IBuilderConfig", self._logger)

    def create_optimization_profile(self) -> Any:
        return self._env.new("IOptimizationProfile")

    def _fail(self, message: str) -> None:
        log(self._env, self._logger, "ERROR", message)

    def _profile_problem(self, network: INetworkDefinition, config: IBuilderConfig) -> str | None:
        if not config._profiles:
            return "Network has dynamic or shape inputs, but no optimization profile has been defined."
        profile = config._profiles[0]
        for tensor in network._inputs:
            if tensor.name not in profile._shapes:
                return f"{tensor.name}: dynamic input is missing dimensions in profile 0."
            lo, mid, hi = profile._shapes[tensor.name]
            if not (len(lo) == len(mid) == len(hi) == len(tensor.shape)):
                return f"{tensor.name}: profile rank does not match the network"
            for d, a, b, c in zip(tensor.shape, lo, mid, hi, strict=True):
                if not a <= b <= c:
                    return f"{tensor.name}: profile must satisfy min <= opt <= max"
                if d != -1 and not a == b == c == d:
                    return f"{tensor.name}: profile dimensions [{a}, {b}, {c}] do not match the fixed dimension {d}"
        return None

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> Any:
        env = self._env
        if network._onnx is None:
            return self._fail("Network must have at least one output")
        problem = self._profile_problem(network, config)
        if problem is not None:
            return self._fail(problem)
        flags = config._flag_names()
        if network._strongly_typed and flags.intersection(PRECISION_FLAGS):
            return self._fail("API Usage Error (precision flags are not allowed with a strongly typed network)")
        if config._pools[int(env.enum("MemoryPoolType").WORKSPACE)] < MIN_WORKSPACE:
            return self._fail("Insufficient workspace: no implementation fits the WORKSPACE pool limit")
        device = env.device
        compute = f"{device.major}.{device.minor}"
        oldest = HARDWARE_LEVEL_MIN.get(config._hw.name)
        if oldest is not None and (device.major, device.minor) < oldest:
            return self._fail(
                f"API Usage Error (hardware compatibility level {config._hw.name} is not supported on a GPU of "
                f"compute capability {compute})"
            )
        layers, bindings = engine_layers(
            network._onnx,
            fp16_flag="FP16" in flags,
            strongly_typed=network._strongly_typed,
            fp32_tactics=frozenset(env.fp32_tactics),
        )
        verbosity = config.profiling_verbosity.name
        record = BuildRecord(flags, network._strongly_typed, config._timing_state, profiling_verbosity=verbosity)
        onnx_id = hashlib.sha256(network._onnx).hexdigest()[:16]
        keys = [
            f"{compute}|{onnx_id}|{layer['Name']}|{[i['Format/Datatype'] for i in layer['Inputs']]}" for layer in layers
        ]
        cached = [config._timing is not None and key in config._timing._entries for key in keys]
        record.progress_monitor = config.progress_monitor is not None
        if not progress.report_build(config.progress_monitor, [layer["Name"] for layer in layers], cached):
            record.cancelled = True
            env.builds.append(record)
            return None
        if config._timing is not None:
            record.timing_cache_hit = all(cached)
            config._timing._entries.update({key: 1 for key, hit in zip(keys, cached, strict=True) if not hit})
            verdict = "hit" if record.timing_cache_hit else "miss"
            log(
                env, self._logger, "INFO", f"fake builder: timing cache {verdict} ({sum(cached)} of {len(keys)} layers)"
            )
        env.builds.append(record)
        output = network._outputs[0]
        profile = config._profiles[0]
        header = {
            "trt_version": env.version,
            "compute": compute,
            "hw": config._hw.name,
            "flags": sorted(flags),
            "strongly_typed": network._strongly_typed,
            "profile": {k: list(map(list, v)) for k, v in profile._shapes.items()},
            "input": network._inputs[0].name,
            "input_dtype": network._inputs[0].dtype.name,
            "output": output.name,
            "output_shape": list(output.shape),
            "output_dtype": output.dtype.name,
            "profiling_verbosity": verbosity,
            "layers": layers,
            "bindings": bindings,
            "refittable": bool(flags.intersection(REFIT_FLAGS)),
        }
        onnx_bytes = network._onnx
        if "STRIP_PLAN" in flags:
            onnx_bytes, header["stripped"] = strip_weights(onnx_bytes)
        lean = b""
        if "VERSION_COMPATIBLE" in flags and "EXCLUDE_LEAN_RUNTIME" not in flags:
            lean = hashlib.sha256(env.version.encode()).digest() * (LEAN_RUNTIME_BYTES // 32)
        return env.new("IHostMemory", plan.serialize(header, onnx_bytes, lean))
