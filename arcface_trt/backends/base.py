"""The embedder interface every backend shares, and the batching/normalisation they have in common."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from arcface_trt.backends.providers import CUDA, check_applied, choose_providers
from arcface_trt.lazy import lazy_import
from arcface_trt.model.inspect import ModelInfo
from arcface_trt.preprocess import Crops, as_crop_list, l2_normalize, preprocess
from arcface_trt.records import Record

ort = lazy_import("onnxruntime")
log = logging.getLogger("arcface_trt")


class DeviceTimer(Protocol):
    """What a GPU engine offers benchmarks and ``diagnose``: device-side timing and its memory.

    :class:`~arcface_trt.engine.runtime.TrtRunner` is one.
    """

    min_batch: int
    max_batch: int

    @property
    def device_memory_bytes(self) -> int:
        """Device memory the engine's execution context needs."""
        ...

    def timed_infer(self, batch: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Run a preprocessed batch; outputs plus ``h2d_ms``, ``compute_ms``, ``d2h_ms`` from device events."""
        ...

    def compute_only(self, batch_size: int, cuda_graph: bool = False) -> float:
        """Milliseconds of one engine execution at ``batch_size``, no transfers."""
        ...


@dataclass
class BackendInfo(Record):
    """What is really running: the record ``info()`` returns and ``diagnose`` prints."""

    backend: str
    requested_backend: str
    device: str
    model_path: str
    precision: str = "fp32"
    providers: list[str] = field(default_factory=list)
    engine_path: str | None = None
    fallback_reason: str | None = None
    embedding_dim: int | None = None
    batch_size: int | None = None
    #: The model's input spec as this backend applies it (:class:`~arcface_trt.model.input_spec.InputSpec`).
    input_spec: dict[str, Any] | None = None
    #: The reference backend only: how it computes (InsightFace's ``get_feat``, or ONNX Runtime on the CPU).
    reference: str | None = None
    #: An engine made for a drift budget: the budget and what its build measured (see :func:`budget_summary`).
    drift_budget: dict[str, Any] | None = None


def budget_summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of an engine manifest's ``drift_budget`` record a backend reports: budget, final check, mode."""
    if not isinstance(record, dict):
        return None
    final = record.get("final_check")
    return {
        "budget": record.get("budget"),
        "measured_max_drift": final.get("max_drift") if isinstance(final, dict) else None,
        "evaluation_mode": record.get("evaluation_mode"),
        "evaluation_crops": final.get("crops") if isinstance(final, dict) else None,
    }


class Embedder(abc.ABC):
    """Common shape of the backends: ``ensure_ready``, ``encode``, ``info``.

    Subclasses load their runtime in :meth:`_load` and run one preprocessed NCHW
    batch in :meth:`forward`; batching and L2 normalisation live here once.
    """

    #: Name reported in ``info().backend``.
    name: str = ""

    def __init__(
        self,
        model: ModelInfo,
        device: str = "auto",
        allow_cpu_fallback: bool = False,
        batch_size: int = 32,
        requested_backend: str | None = None,
        precision: str | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.allow_cpu_fallback = allow_cpu_fallback
        self.batch_size = batch_size
        self.requested_backend = requested_backend or self.name
        # An already quantized (QDQ) model runs as int8 whatever runs it.
        self.precision = precision or ("int8" if model.quantized else "fp32")
        self.fallback_reason: str | None = None
        self.providers: list[str] = []
        self._ready = False

    def ensure_ready(self) -> None:
        """Load the model/runtime once; cheap when already loaded."""
        if not self._ready:
            self._load()
            self._ready = True

    @abc.abstractmethod
    def _load(self) -> None:
        """Create the runtime session or engine."""

    @abc.abstractmethod
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run one preprocessed float32 NCHW batch (at most ``batch_size``); raw outputs ``(n, D)``."""

    @property
    def on_gpu(self) -> bool:
        """True when this embedder computes on a GPU (ONNX Runtime with CUDA applied, or a GPU engine)."""
        return CUDA in self.providers[:1]

    def device_timer(self) -> DeviceTimer | None:
        """The device-side timer of a GPU engine, or None (CPU backends time on the host only)."""
        return None

    def _open_onnxruntime(self, create: Callable[[list[str]], Any]) -> Any:
        """Choose providers for ``self.device``, create the session, check what ORT applied.

        A device fallback (allowed by ``allow_cpu_fallback``) is a warning line as well as ``fallback_reason``.
        """
        choice = choose_providers(self.device, ort.get_available_providers(), self.allow_cpu_fallback)
        session = create(choice.providers)
        self.providers = list(session.get_providers())
        self.fallback_reason = check_applied(choice, self.providers, self.allow_cpu_fallback)
        if self.fallback_reason:
            log.warning(
                "%s backend: device '%s' unavailable: %s; falling back to the CPU",
                self.name,
                self.device,
                self.fallback_reason,
            )
        return session

    def info(self) -> BackendInfo:
        """Record of what is running: providers really applied, precision, fallback reason."""
        on_cpu = self.providers[:1] == ["CPUExecutionProvider"]
        return BackendInfo(
            backend=self.name,
            requested_backend=self.requested_backend,
            device="cpu" if on_cpu else self.device,
            model_path=self.model.path,
            precision=self.precision,
            providers=list(self.providers),
            fallback_reason=self.fallback_reason,
            embedding_dim=self.model.embedding_dim,
            batch_size=self.batch_size,
            input_spec=self.model.input_spec.to_dict(),
        )

    def preprocess(self, crops: Crops) -> np.ndarray:
        """The shared preprocessing, driven by this model's input spec."""
        return preprocess(crops, self.model.input_spec)

    def _embed_chunk(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.forward(self.preprocess(crops))

    def encode(self, face_crops: Crops) -> np.ndarray:
        """Embed BGR uint8 crops: ``(N, D)`` float32, each row L2-normalised."""
        self.ensure_ready()
        items = as_crop_list(face_crops)
        chunks = [
            self._embed_chunk(items[start : start + self.batch_size]) for start in range(0, len(items), self.batch_size)
        ]
        return l2_normalize(np.concatenate(chunks, axis=0))
