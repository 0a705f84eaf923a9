"""The names the project knows, each list defined once: backends, precisions, devices, targets, levels.

Config validation, the backend factory, the CLI and the reports all take their
choices from here, so a new precision or backend is added in one place.
"""

from __future__ import annotations

from arcface_trt.errors import ConfigError

#: Canonical backend names.
BACKENDS = ("insightface", "onnxruntime", "tensorrt")
#: ``pytorch`` is what the pipeline this replaces called the InsightFace reference.
BACKEND_ALIASES = {"pytorch": "insightface"}
#: Every name a config file or option may use for a backend.
BACKEND_CHOICES = ("pytorch", *BACKENDS)
#: The backend every other one is compared against.
REFERENCE_BACKEND = "insightface"
#: ``embedding.backend: auto``: the pipeline's automatic choice, which ``arcface_tensorrt.enabled`` makes
#: (true: tensorrt; false or unset: the reference).
AUTO_BACKEND = "auto"

PRECISIONS = ("fp32", "fp16", "int8")
#: The backends a precision applies to: onnxruntime runs the CPU engine of it, tensorrt a plan of it.
PRECISION_BACKENDS = ("onnxruntime", "tensorrt")
DEVICES = ("auto", "cpu", "cuda", "coreml")
#: What an engine is built for: a TensorRT plan on an NVIDIA GPU, or an ONNX Runtime CPU engine.
TARGETS = ("gpu", "cpu")
HARDWARE_COMPATIBILITY = ("none", "ampere_plus", "same_cc")
MODEL_ARCHS = ("r18", "r34", "r50", "r100")
#: Environment variables the engine store reads, first set wins, when the config leaves endpoint or region null.
ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_ENV_VARS = ("AWS_REGION", "AWS_DEFAULT_REGION")


def canonical_backend(name: str) -> str:
    """Map a backend name or alias to its canonical name; unknown names are a :class:`ConfigError`."""
    canonical = BACKEND_ALIASES.get(name, name)
    if canonical not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}' (choose {', '.join(BACKEND_CHOICES[:-1])} or {BACKENDS[-1]})")
    return canonical


def check_precision(name: str) -> str:
    """``name`` when it is a known precision, else a :class:`ConfigError` listing the choices."""
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision '{name}' (choose {', '.join(PRECISIONS)})")
    return name


def check_target(name: str) -> str:
    """``name`` when it is a known build target, else a :class:`ConfigError`."""
    if name not in TARGETS:
        raise ConfigError(f"unknown --target '{name}' (choose {' or '.join(TARGETS)})")
    return name
