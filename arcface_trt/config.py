"""Pipeline configuration: two YAML files read into frozen dataclasses.

``config/pipeline/embedding.yaml`` chooses the backend and the parity tolerances;
``config/pipeline/arcface_tensorrt.yaml`` holds the TensorRT engine settings. The
dataclass defaults below are the documented defaults and equal the shipped files
(a test keeps them in step). Unknown keys, wrong types and out-of-range values are
:class:`ConfigError` naming the file and the dotted key. A relative path in a config file
(``embedding.tensorrt_config``, ``embedding.model_path``) is looked up in the current folder,
then in the config file's folder (:func:`config_path_candidates`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from arcface_trt.artifacts.portability import check_options
from arcface_trt.errors import ConfigError, InputError, short_repr
from arcface_trt.fileio import read_regular_file
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.names import (
    AUTO_BACKEND,
    BACKEND_CHOICES,
    DEVICES,
    HARDWARE_COMPATIBILITY,
    MODEL_ARCHS,
    PRECISIONS,
    check_precision,
)
from arcface_trt.schema import conforms, type_name

log = logging.getLogger("arcface_trt")

EMBEDDING_CONFIG_ENV = "ARCFACE_TRT_CONFIG"
DEFAULT_EMBEDDING_CONFIG = Path("config/pipeline/embedding.yaml")
#: The TensorRT settings read with the built-in embedding defaults (no embedding config), when present.
DEFAULT_TENSORRT_CONFIG = "config/pipeline/arcface_tensorrt.yaml"
#: Largest config file read (the shipped ones are under 2 kB).
MAX_CONFIG_BYTES = 1 << 20
#: Deepest nesting and most values (aliases expanded) a config document may have.
MAX_YAML_DEPTH = 32
MAX_YAML_VALUES = 100_000


def _choice(*values: str) -> dict[str, Any]:
    return {"choices": values}


def _range(low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"min": low, "max": high}


@dataclass(frozen=True)
class EmbeddingSection:
    """``embedding:`` in embedding.yaml."""

    backend: str = field(default="pytorch", metadata=_choice(*BACKEND_CHOICES, AUTO_BACKEND))
    device: str = field(default="auto", metadata=_choice(*DEVICES))
    allow_cpu_fallback: bool = False
    #: The TensorRT settings file; relative: from the current folder, then this config file's folder.
    tensorrt_config: str = "arcface_tensorrt.yaml"
    #: ONNX model; null means the built-in generated model (``model_arch``, ``model_seed``).
    model_path: str | None = None
    model_arch: str = field(default="r50", metadata=_choice(*MODEL_ARCHS))
    model_seed: int = field(default=0, metadata=_range(0))
    #: Largest batch one backend call receives; bigger inputs are split.
    batch_size: int = field(default=32, metadata=_range(1, 4096))
    #: The model's input spec, when the graph and InsightFace's rule get it wrong: one number or three (RGB order).
    input_mean: float | tuple[float, ...] | None = None
    input_std: float | tuple[float, ...] | None = None
    #: rgb | bgr: the channel order the model takes; null: RGB.
    input_color: str | None = None

    def __post_init__(self) -> None:
        # Checked here so a config file names its bad key; null keeps resolving from the model.
        try:
            self.input_settings()
        except InputError as exc:
            raise ConfigError(str(exc)) from None

    def input_settings(self) -> InputSettings:
        """The explicit input settings of this section (checked)."""
        names = ("embedding.input_mean", "embedding.input_std", "embedding.input_color")
        return InputSettings.parse(self.input_mean, self.input_std, self.input_color, names)


#: The ``validation:`` key holding the drift tolerance of each precision (fp32 keeps the historical name).
DRIFT_KEYS = {p: "max_drift_cosine" if p == "fp32" else f"max_drift_cosine_{p}" for p in PRECISIONS}


@dataclass(frozen=True)
class Tolerance:
    """A drift tolerance (largest allowed 1 - cosine of the worst sample) and the setting it comes from."""

    value: float
    #: ``validation.max_drift_cosine_int8``, ..., or ``--max-drift-cosine`` when given for one run.
    key: str


@dataclass(frozen=True)
class ValidationSection:
    """``validation:`` in embedding.yaml."""

    #: Largest allowed drift (1 - cosine) of the worst sample against the reference, fp32 embeddings; the two
    #: below for fp16 and int8 ones (defaults measured on the built-in models: docs/parity.md).
    max_drift_cosine: float = field(default=0.001, metadata=_range(0.0, 2.0))
    max_drift_cosine_fp16: float = field(default=0.002, metadata=_range(0.0, 2.0))
    max_drift_cosine_int8: float = field(default=0.02, metadata=_range(0.0, 2.0))
    #: On a pair set: largest allowed drop of B's 10-fold verification accuracy (and rank-1) below A's, a fraction.
    max_accuracy_drop: float = field(default=0.001, metadata=_range(0.0, 1.0))
    n_samples: int = field(default=100, metadata=_range(1, 100_000))
    seed: int = field(default=0, metadata=_range(0))
    #: Mean pairwise cosine of the seven distinct real sample faces above which embeddings have collapsed.
    collapse_cosine: float = field(default=0.9, metadata=_range(-1.0, 1.0))

    def drift_tolerance(self, precision: str) -> Tolerance:
        """The tolerance for embeddings computed at ``precision`` (fp32, fp16, int8), named by its key."""
        key = DRIFT_KEYS[check_precision(precision)]
        return Tolerance(getattr(self, key), f"validation.{key}")


@dataclass(frozen=True)
class PrecisionSection:
    """``precision:`` in embedding.yaml: read by every precision transform (TensorRT plans and CPU engines)."""

    #: fp16: node names kept in fp32; null keeps the embedding head (the last Gemm/MatMul and what follows).
    keep_fp32_nodes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ArcfaceTensorrtSection:
    """``arcface_tensorrt:`` in arcface_tensorrt.yaml."""

    #: The pipeline's automatic choice (``embedding.backend: auto``): true takes TensorRT, false or null the
    #: reference. Naming tensorrt (``embedding.backend``, ``--backend``, ``backend_type=``) runs it whatever this
    #: says, except that ``false`` beside ``embedding.backend: tensorrt`` is refused: the config contradicts itself.
    enabled: bool | None = None


@dataclass(frozen=True)
class TensorrtSection:
    """``tensorrt:`` in arcface_tensorrt.yaml."""

    precision: str = field(default="fp16", metadata=_choice(*PRECISIONS))
    min_batch_size: int = field(default=1, metadata=_range(1, 4096))
    opt_batch_size: int = field(default=32, metadata=_range(1, 4096))
    max_batch_size: int = field(default=32, metadata=_range(1, 4096))
    workspace_size_mb: int = field(default=1024, metadata=_range(1, 1 << 20))
    hardware_compatibility: str = field(default="none", metadata=_choice(*HARDWARE_COMPATIBILITY))
    #: Weight-stripped plans (STRIP_PLAN + REFIT_IDENTICAL), refit at load from the ONNX they were parsed from.
    strip_weights: bool = False
    #: Version-compatible plans (VERSION_COMPATIBLE), with the lean runtime embedded unless excluded.
    version_compatible: bool = False
    exclude_lean_runtime: bool = False
    #: The lean runtime library (libnvinfer_lean.so) a plan built with exclude_lean_runtime is loaded through.
    lean_runtime_library: str | None = None
    #: Reuse an on-disk timing cache across builds (keyed like the engines).
    timing_cache: bool = True
    #: An fp16 build fails unless this share of its convolution/matrix layers (nodes kept in fp32 on
    #: purpose not counted) really runs in fp16, as the engine inspector reports; 0 turns the check off.
    min_fp16_share: float = field(default=0.8, metadata=_range(0.0, 1.0))
    #: Deprecated (still read, with a warning): ``precision.keep_fp32_nodes`` in embedding.yaml replaces it.
    fp16_keep_fp32_nodes: tuple[str, ...] | None = field(default=None, metadata={"deprecated": "precision"})
    #: Engine cache folder; null means ``<user cache>/arcface-trt/engines``.
    cache_dir: str | None = None
    engine_s3_bucket: str | None = None
    engine_s3_prefix: str = "engines/"
    #: S3-compatible endpoint (MinIO, ...); null uses AWS (or ``AWS_ENDPOINT_URL``).
    engine_s3_endpoint_url: str | None = None
    engine_s3_region: str | None = None

    def __post_init__(self) -> None:
        check_batch_profile(self.min_batch_size, self.opt_batch_size, self.max_batch_size)
        check_options(self.strip_weights, self.version_compatible, self.exclude_lean_runtime)


def check_batch_profile(min_batch: int, opt_batch: int, max_batch: int) -> None:
    """The optimization-profile rule, in one place: ``min <= opt <= max``."""
    if not min_batch <= opt_batch <= max_batch:
        raise ConfigError(
            "tensorrt.min_batch_size <= opt_batch_size <= max_batch_size does not hold "
            f"({min_batch}, {opt_batch}, {max_batch})"
        )


@dataclass(frozen=True)
class TensorrtConfig:
    """arcface_tensorrt.yaml."""

    arcface_tensorrt: ArcfaceTensorrtSection = ArcfaceTensorrtSection()
    tensorrt: TensorrtSection = TensorrtSection()
    source: str | None = None


@dataclass(frozen=True)
class EmbeddingConfig:
    """embedding.yaml, with the TensorRT config it points to loaded beside it."""

    embedding: EmbeddingSection = EmbeddingSection()
    validation: ValidationSection = ValidationSection()
    precision: PrecisionSection = PrecisionSection()
    tensorrt: TensorrtConfig = TensorrtConfig()
    source: str | None = None

    def __post_init__(self) -> None:
        if self.embedding.backend == "tensorrt" and self.tensorrt.arcface_tensorrt.enabled is False:
            raise ConfigError(
                f"{self.source or 'embedding config'}: 'embedding.backend' is tensorrt but "
                f"'arcface_tensorrt.enabled' is false in {self.tensorrt.source or 'the TensorRT config'}; "
                "set arcface_tensorrt.enabled to true or null, or choose another embedding.backend"
            )
        # The deprecated tensorrt.fp16_keep_fp32_nodes still counts, resolved here once for every reader.
        legacy = self.tensorrt.tensorrt.fp16_keep_fp32_nodes
        current = self.precision.keep_fp32_nodes
        if legacy is None or legacy == current:
            return
        if current is not None:
            raise ConfigError(
                f"{self.source or 'embedding config'}: 'precision.keep_fp32_nodes' and the deprecated "
                f"'tensorrt.fp16_keep_fp32_nodes' of {self.tensorrt.source or 'the TensorRT config'} disagree; "
                "keep only precision.keep_fp32_nodes"
            )
        object.__setattr__(self, "precision", PrecisionSection(keep_fp32_nodes=legacy))

    def with_tensorrt_section(self, section: TensorrtSection) -> EmbeddingConfig:
        """This config with its ``tensorrt:`` section replaced (command-line overrides applied to it)."""
        return dataclasses.replace(self, tensorrt=dataclasses.replace(self.tensorrt, tensorrt=section))


def build_section(cls: type, raw: Any, where: str, prefix: str) -> Any:
    """Make section dataclass ``cls`` from a mapping, checking keys, types and ranges."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: '{prefix}' must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key {short_repr(dotted)} (known keys: {known})")
        ok, converted = conforms(value, hints[key])
        if not ok:
            raise ConfigError(f"{where}: '{dotted}' must be {type_name(hints[key])}, got {short_repr(value)}")
        meta = fields[key].metadata
        if "choices" in meta and converted not in meta["choices"]:
            choices = ", ".join(meta["choices"])
            raise ConfigError(f"{where}: '{dotted}' must be one of {choices}, got {short_repr(value)}")
        low, high = meta.get("min"), meta.get("max")
        if converted is not None and low is not None and converted < low:
            raise ConfigError(f"{where}: '{dotted}' must be >= {low}, got {short_repr(value)}")
        if converted is not None and high is not None and converted > high:
            raise ConfigError(f"{where}: '{dotted}' must be <= {high}, got {short_repr(value)}")
        values[key] = converted
    try:
        return cls(**values)
    except ConfigError as exc:  # a rule across keys (the batch profile)
        raise ConfigError(f"{where}: {exc}") from None


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents nested deeper than :data:`MAX_YAML_DEPTH` or expanding
    to more than :data:`MAX_YAML_VALUES` values.

    Aliases are counted as what they stand for, so a "billion laughs" document (each level
    ten aliases of the one above) is refused while it is composed, before any code walks the
    shared structure it would become; depth is bounded before Python's recursion limit is.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values: dict[int, int] = {}  # id(node) -> how many values it stands for, aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node (see :class:`yaml.composer.Composer`), counting its depth and expanded size."""
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", self.peek_event().start_mark
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) not in self._values:  # an alias returns its anchor, counted already
            if isinstance(node, yaml.MappingNode):
                children = [item for pair in node.value for item in pair]
            else:
                children = node.value if isinstance(node, yaml.SequenceNode) else []
            self._values[id(node)] = 1 + sum(self._values[id(child)] for child in children)
        if self._values[id(node)] > MAX_YAML_VALUES:
            raise yaml.composer.ComposerError(
                None, None, f"expands to more than {MAX_YAML_VALUES:,} values (nested aliases?)", node.start_mark
            )
        return node


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = read_regular_file(path, MAX_CONFIG_BYTES, "config file")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    try:
        data = yaml.load(text, Loader=BoundedLoader)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _build_file(cls: type, data: dict[str, Any], where: str) -> Any:
    sections = {
        f.name: f for f in dataclasses.fields(cls) if f.name != "source" and dataclasses.is_dataclass(f.default)
    }
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in sections:
            known = ", ".join(sorted(sections))
            raise ConfigError(f"{where}: unknown key {short_repr(key)} (known sections: {known})")
        values[key] = build_section(hints[key], raw, where, key)
    return values


def load_tensorrt_config(path: str | Path) -> TensorrtConfig:
    """Read an arcface_tensorrt.yaml file."""
    path = Path(path)
    values = _build_file(TensorrtConfig, _read_yaml(path), str(path))
    if "tensorrt" in values and values["tensorrt"].fp16_keep_fp32_nodes is not None:
        log.warning(
            "%s: 'tensorrt.fp16_keep_fp32_nodes' is deprecated; set 'precision.keep_fp32_nodes' in embedding.yaml "
            "(it applies to TensorRT plans and CPU engines alike)",
            path,
        )
    return TensorrtConfig(**values, source=str(path))


def config_path_candidates(value: str | Path, config_file: str | Path | None) -> list[Path]:
    """Where a path written in a config (or given beside one) may be: as given (absolute, or from the current
    folder), then from the config file's folder."""
    path = Path(value).expanduser()
    if path.is_absolute() or config_file is None:
        return [path]
    unique: dict[str, Path] = {}  # the config file's folder may be the current one
    for candidate in (path, Path(config_file).parent / path):
        unique.setdefault(os.path.abspath(candidate), candidate)
    return list(unique.values())


def find_config_file(value: str | Path, config_file: str | Path | None, what: str) -> Path:
    """The first of :func:`config_path_candidates` that exists; a :class:`ConfigError` naming each place tried."""
    candidates = config_path_candidates(value, config_file)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(os.path.abspath(c) for c in candidates)
    raise ConfigError(f"{what} {short_repr(str(value))} does not exist (tried {tried})")


def default_config_path() -> Path | None:
    """The embedding config used when none is given.

    ``$ARCFACE_TRT_CONFIG``, else ``./config/pipeline/embedding.yaml`` if present, else None (built-in defaults).
    """
    explicit = os.environ.get(EMBEDDING_CONFIG_ENV)
    if explicit:
        return Path(explicit)
    return DEFAULT_EMBEDDING_CONFIG if DEFAULT_EMBEDDING_CONFIG.exists() else None


def _tensorrt_beside(value: str, config_file: Path, *, named: bool) -> TensorrtConfig:
    """The TensorRT config an embedding config names; the default name may be absent (TensorRT defaults then).

    A file that only sets, say, ``embedding.input_mean`` must not need a TensorRT file beside it; a
    ``tensorrt_config`` written in the file must exist.
    """
    what = f"{config_file}: 'embedding.tensorrt_config'"
    if not named and not any(c.exists() for c in config_path_candidates(value, config_file)):
        return TensorrtConfig()
    return load_tensorrt_config(find_config_file(value, config_file, what))


def load_config(path: str | Path | None = None) -> EmbeddingConfig:
    """Load embedding.yaml (``path``, else :func:`default_config_path`, else built-in defaults).

    The TensorRT file named by ``embedding.tensorrt_config`` is loaded too; when the
    embedding config is the built-in default and that file is absent, TensorRT
    defaults are used.
    """
    chosen = Path(path) if path is not None else default_config_path()
    if chosen is None:
        trt_default = Path(DEFAULT_TENSORRT_CONFIG)
        trt = load_tensorrt_config(trt_default) if trt_default.exists() else TensorrtConfig()
        return EmbeddingConfig(tensorrt=trt)
    raw = _read_yaml(chosen)
    values = _build_file(EmbeddingConfig, raw, str(chosen))
    embedding = values.get("embedding", EmbeddingSection())
    trt = _tensorrt_beside(embedding.tensorrt_config, chosen, named="tensorrt_config" in (raw.get("embedding") or {}))
    if embedding.model_path is not None:
        # A model absent from both places stays as written: commands that only name engines do not need it.
        found = [c for c in config_path_candidates(embedding.model_path, chosen) if c.exists()]
        if found:
            values["embedding"] = dataclasses.replace(embedding, model_path=str(found[0]))
    return EmbeddingConfig(**values, tensorrt=trt, source=str(chosen))


def with_overrides(section: Any, prefix: str, **overrides: Any) -> Any:
    """Return ``section`` with the non-None ``overrides`` applied (command-line options win over the file).

    Overrides get the same checks as file values; errors name the option as ``prefix.key``.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return section
    merged = {**dataclasses.asdict(section), **given}
    return build_section(type(section), merged, "command line", prefix)
