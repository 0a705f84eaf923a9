"""The backend spec: one embedder's settings, with every "None means take it from the config" resolved once.

:meth:`BackendSpec.resolve` is the only place those defaults are filled in.
:func:`~arcface_trt.backends.get_embedding_backend`, ``embed`` (in one process and on
Ray workers, which receive the spec as it is) and every command go through it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from arcface_trt.config import EmbeddingConfig, TensorrtConfig, find_config_file, load_config, load_tensorrt_config
from arcface_trt.errors import InputError
from arcface_trt.model.default import ensure_default_model
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.names import AUTO_BACKEND, REFERENCE_BACKEND, canonical_backend, check_precision


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to make one embedder (picklable: Ray ships it to its workers)."""

    #: Canonical backend name (``pytorch`` resolved to ``insightface``).
    backend: str
    #: The ONNX model; None is the built-in model of ``model_arch`` and ``model_seed`` (see :meth:`model_file`).
    model_path: str | None
    device: str
    batch_size: int
    allow_cpu_fallback: bool
    tensorrt: TensorrtConfig
    model_arch: str = "r50"
    model_seed: int = 0
    #: ``precision.keep_fp32_nodes`` (fp16 from a mixed-precision ONNX); None keeps the embedding head.
    keep_fp32_nodes: tuple[str, ...] | None = None
    #: onnxruntime only: run the cached CPU engine of this precision (None: the ONNX model as it is).
    precision: str | None = None
    #: Explicit input settings (config, then command line); what they leave open is resolved from the model.
    inputs: InputSettings = field(default_factory=InputSettings)
    #: Intra-op threads of an ONNX Runtime session (onnxruntime, insightface); None: one per core.
    threads: int | None = None
    #: Run the engine made for this drift budget (onnxruntime: the CPU engine of ``precision``; tensorrt: the plan
    #: of ``tensorrt.precision``), served from the cache; None: the engine without a budget.
    drift_budget: float | None = None

    @classmethod
    def resolve(
        cls,
        backend: str | None = None,
        device: str | None = None,
        tensorrt_config: str | Path | TensorrtConfig | None = None,
        allow_cpu_fallback: bool | None = None,
        onnx_path: str | Path | None = None,
        *,
        config: str | Path | EmbeddingConfig | None = None,
        batch_size: int | None = None,
        precision: str | None = None,
        inputs: InputSettings | None = None,
        drift_budget: float | None = None,
    ) -> BackendSpec:
        """Fill every argument left as None from the embedding config (``config``: a path, a loaded one, or None).

        ``tensorrt_config`` replaces the TensorRT config that embedding.yaml names; a relative path is
        looked up in the current folder, then in the embedding config's folder. ``inputs`` (the command
        line's input settings) win over the config's ``embedding.input_*``. Naming ``tensorrt``
        (here or in ``embedding.backend``) runs TensorRT; ``auto`` is the pipeline's automatic choice,
        tensorrt when ``arcface_tensorrt.enabled`` is true, else the reference. ``drift_budget``: run the
        engine a drift-budget build made (it must be in the cache: ``arcface-trt build --drift-budget``).
        Unknown backend or precision names are a :class:`~arcface_trt.errors.ConfigError`.
        """
        cfg = config if isinstance(config, EmbeddingConfig) else load_config(config)
        if tensorrt_config is not None:
            trt_cfg = (
                tensorrt_config
                if isinstance(tensorrt_config, TensorrtConfig)
                else load_tensorrt_config(find_config_file(tensorrt_config, cfg.source, "tensorrt_config"))
            )
            cfg = dataclasses.replace(cfg, tensorrt=trt_cfg)
        emb = cfg.embedding
        name = backend or emb.backend
        if name == AUTO_BACKEND:
            name = "tensorrt" if cfg.tensorrt.arcface_tensorrt.enabled else REFERENCE_BACKEND
        name = canonical_backend(name)
        if precision is not None:
            check_precision(precision)
        if batch_size is not None and batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {batch_size}")
        chosen = onnx_path or emb.model_path
        return cls(
            backend=name,
            model_path=None if chosen is None else str(chosen),
            device=device or emb.device,
            batch_size=batch_size or emb.batch_size,
            allow_cpu_fallback=emb.allow_cpu_fallback if allow_cpu_fallback is None else allow_cpu_fallback,
            tensorrt=cfg.tensorrt,
            model_arch=emb.model_arch,
            model_seed=emb.model_seed,
            keep_fp32_nodes=cfg.precision.keep_fp32_nodes,
            precision=precision,
            inputs=(inputs or InputSettings()).over(emb.input_settings()),
            drift_budget=drift_budget,
        )

    def model_file(self) -> Path:
        """The model to load: ``model_path``, else the built-in model (generated into the user cache on first use).

        Resolved where the embedder is made, so a Ray worker regenerates the built-in model itself.
        """
        if self.model_path is not None:
            return Path(self.model_path)
        return ensure_default_model(self.model_arch, self.model_seed)
