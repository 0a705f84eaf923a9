"""fp32 ONNX -> int8 QDQ ONNX by static quantization, calibrated on face crops.

ONNX Runtime's ``quantize_static`` inserts QuantizeLinear/DequantizeLinear pairs
with per-channel weight scales; the activation ranges come from running the fp32
model on face crops prepared by :func:`arcface_trt.preprocess.preprocess`, exactly
as inference prepares them. Calibrating on anything else misleads the ranges (on
random noise a generated r50 fell to mean cosine 0.30 against fp32).

The same QDQ model is what TensorRT builds as an explicitly quantized int8 engine
and what ONNX Runtime runs with integer kernels on the CPU.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import platform
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.errors import InputError, first_line
from arcface_trt.faces import sample_faces
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.inputs import list_images, read_image
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.model.inspect import ModelInfo, inspect_model, load_onnx
from arcface_trt.precision.fp16 import default_fp32_nodes, name_unnamed_nodes
from arcface_trt.preprocess import preprocess
from arcface_trt.records import Record

onnx = lazy_import("onnx")
quantization = lazy_import("onnxruntime.quantization")
shape_inference = lazy_import("onnxruntime.quantization.shape_inference")

log = logging.getLogger("arcface_trt")

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
#: Op types quantized: the ones that carry the compute. Left in float: BatchNormalization
#: (ORT quantizes its scale per tensor, adding error for no speed) and the residual Add
#: (the residual stream's wide range lost accuracy: generated r50, 48 crops, mean cosine
#: 0.9875 with Add quantized vs 0.9936 without, and int8 ran faster without it).
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
#: Crops run through the fp32 model per calibration step (memory vs. speed).
CALIBRATION_BATCH = 8


@dataclass(frozen=True)
class CalibrationSettings(Record):
    """How an int8 model is calibrated; part of the CPU engine manifest.

    ``images``: folder of face crops (None: the seeded sample faces of ``identities``, all seven
    when None; a drift-budget search also reads a list file or a ``.npy``). ``samples``:
    how many crops (the first ``samples`` readable images of the folder, sorted).
    ``method``: minmax | entropy | percentile. ``activation_type``: uint8 (U8S8,
    the fast kernels on x86) | int8 (S8S8). ``keep_fp32_head``: leave the final
    Gemm/MatMul and the nodes after it unquantized.
    """

    samples: int = 64
    method: str = "minmax"
    activation_type: str = "uint8"
    images: str | None = None
    seed: int = 0
    per_channel: bool = True
    keep_fp32_head: bool = True
    #: 7-bit weights; None: automatic (:func:`default_reduce_range`).
    reduce_range: bool | None = None
    percentile: float = 99.999
    #: Quantize biases to int32 (ONNX Runtime's CPU default). TensorRT's parser takes float biases only.
    quantize_bias: bool = True
    #: Which sample faces the seeded crops show (indices into the seven; None: all): a drift-budget search
    #: calibrates on some identities and evaluates on the others.
    identities: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.images is not None:
            # The folder is part of the engine recipe: ./faces and /abs/faces are one folder, one engine.
            object.__setattr__(self, "images", str(Path(self.images).expanduser().resolve()))
        if self.samples < 1:
            raise InputError(f"--calib-samples must be at least 1, got {self.samples}")
        if self.method not in CALIBRATION_METHODS:
            choices = ", ".join(CALIBRATION_METHODS)
            raise InputError(f"unknown calibration method '{self.method}' (choose {choices})")
        if self.activation_type not in ACTIVATION_TYPES:
            choices = ", ".join(ACTIVATION_TYPES)
            raise InputError(f"unknown activation type '{self.activation_type}' (choose {choices})")
        if not 50.0 < self.percentile <= 100.0:
            raise InputError(f"calibration percentile must lie in (50, 100], got {self.percentile}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record (as a manifest reads it back: identities as a list)."""
        data = asdict(self)
        data["identities"] = None if self.identities is None else list(self.identities)
        return data

    def resolved(self) -> CalibrationSettings:
        """These settings with every automatic choice made for this machine."""
        if self.reduce_range is not None:
            return self
        return replace(self, reduce_range=default_reduce_range())


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def default_reduce_range() -> bool:
    """True on x86 CPUs without VNNI, where ONNX Runtime's U8S8 kernels can saturate.

    Without VNNI, x86 multiplies uint8 x int8 pairs with ``vpmaddubsw``, whose int16
    sums saturate for full 8-bit weights: on this project's AVX2 build machine a
    generated r18 fell to mean cosine 0.90 against fp32, while the same QDQ model
    computed in float (ORT optimisations off) gave 0.995. 7-bit weights (ORT's
    ``reduce_range``) cannot saturate. ARM and VNNI CPUs, and TensorRT, do not need it.
    """
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    flags = _cpu_flags()
    if not flags:
        return True  # unknown x86 CPU: the safe choice
    return not flags.intersection({"avx512_vnni", "avx_vnni", "amx_int8"})


def load_calibration_crops(settings: CalibrationSettings) -> np.ndarray | list[np.ndarray]:
    """The crops to calibrate on: the folder's readable images, else the seeded sample faces.

    An empty folder, or one without a single readable image, is an :class:`InputError`;
    unreadable files beside readable ones are skipped with a warning.
    """
    if settings.images is None:
        return sample_faces(settings.samples, settings.seed, settings.identities)
    folder = Path(settings.images)
    try:
        paths = list_images(folder)
    except InputError as exc:
        raise InputError(f"calibration images: {exc}") from None
    crops: list[np.ndarray] = []
    skipped = 0
    for path in paths:
        image = read_image(path)
        if image is None:
            skipped += 1
            continue
        crops.append(image)
        if len(crops) == settings.samples:
            break
    if not crops:
        raise InputError(f"calibration images: none of the {len(paths)} files in {folder} is a readable image")
    if skipped:
        log.warning("calibration: skipped %d unreadable file(s) in %s", skipped, folder)
    return crops


def check_calibration_source(settings: CalibrationSettings) -> None:
    """Fail fast (InputError) when the calibration folder is missing, empty or holds no readable image.

    Reads images only until the first readable one, so it is cheap before a long build.
    """
    if settings.images is None:
        return
    folder = Path(settings.images)
    try:
        paths = list_images(folder)
    except InputError as exc:
        raise InputError(f"calibration images: {exc}") from None
    if not any(read_image(path) is not None for path in paths):
        raise InputError(f"calibration images: none of the {len(paths)} files in {folder} is a readable image")


class FaceCalibrationReader:
    """ONNX Runtime ``CalibrationDataReader`` over preprocessed face-crop batches."""

    def __init__(self, batches: list[np.ndarray], input_name: str) -> None:
        self._batches = batches
        self._input_name = input_name
        self._iterator: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next ``{input_name: batch}``, or None when exhausted."""
        batch = next(self._iterator, None)
        return None if batch is None else {self._input_name: batch}

    def rewind(self) -> None:
        """Start over (ORT calls this between calibration passes)."""
        self._iterator = iter(self._batches)

    def __len__(self) -> int:
        return len(self._batches)


def calibration_batches(info: ModelInfo, crops: Any, batch: int = CALIBRATION_BATCH) -> list[np.ndarray]:
    """Preprocess ``crops`` through the model's input spec into NCHW batches.

    All batches have one size (ORT's histogram calibrators stack them): for a dynamic
    batch the largest divisor of the crop count up to ``batch``; for a fixed batch that
    batch, dropping the remainder.
    """
    data = preprocess(crops, info.input_spec)
    if info.dynamic_batch:
        step = max(d for d in range(1, min(batch, len(data)) + 1) if len(data) % d == 0)
    else:
        step = int(info.input_shape[0])
    if len(data) < step:
        raise InputError(f"{info.path} has a fixed batch of {step}; calibrate on at least {step} crops")
    usable = len(data) if info.dynamic_batch else len(data) - len(data) % step
    return [data[i : i + step] for i in range(0, usable, step)]


def quantize_int8(
    src: Path, dst: Path, settings: CalibrationSettings | None = None, inputs: InputSettings | None = None
) -> Path:
    """Quantize the fp32 ONNX ``src`` to an int8 QDQ ONNX written atomically to ``dst``.

    Per-channel int8 weights (symmetric), ``settings.activation_type`` activations,
    ranges from ``settings.method`` over ``settings.samples`` face crops preprocessed through the
    model's input spec (``inputs``: explicit input settings). Returns ``dst``. A model that is
    already quantized is an :class:`InputError`: quantizing twice is never what was meant.
    """
    with tempfile.TemporaryDirectory(prefix="arcface-trt-int8-") as tmp:
        out = PreparedQuantization(Path(src), settings, inputs, Path(tmp)).quantize("int8")
        write_bytes_atomic(Path(dst), out.read_bytes())
    return Path(dst)


class PreparedQuantization:
    """A model named, pre-processed and calibrated once, then quantized with any of its nodes left in float.

    A drift-budget search quantizes one model many times, each time with other nodes left out;
    the calibration (the fp32 model run over every calibration crop) is the slow part and runs
    once, kept in ONNX Runtime's calibration cache where the installed version has one (older
    versions calibrate again on each call, with the same result). Files live in ``work_dir``.
    ``crops``: the calibration crops (None: loaded as ``settings`` say).
    """

    def __init__(
        self,
        src: Path,
        settings: CalibrationSettings | None,
        inputs: InputSettings | None,
        work_dir: Path,
        crops: Any = None,
    ) -> None:
        self.settings = (settings or CalibrationSettings()).resolved()
        self.source = Path(src)
        info = inspect_model(self.source, inputs)
        if info.quantized:
            raise InputError(
                f"{src} is already quantized (it holds DequantizeLinear nodes): it cannot be quantized again; "
                "use it as the int8 model as it is (build --precision int8), or quantize the fp32 model"
            )
        info.report_input_spec()
        crops = load_calibration_crops(self.settings) if crops is None else crops
        self._reader = FaceCalibrationReader(calibration_batches(info, crops), info.input_name)
        self.work_dir = Path(work_dir)
        named = self.work_dir / "named.onnx"
        #: ORT's pre-processed model: the node names quantization (and ``exclude``) refers to.
        self.prepared = self.work_dir / "prepared.onnx"
        model = load_onnx(self.source)
        name_unnamed_nodes(model)
        onnx.save(model, str(named))
        # ORT's recommended pre-processing: shape inference plus the basic graph
        # optimisations (Conv+BN folding), so quantization sees the graph that runs.
        shape_inference.quant_pre_process(str(named), str(self.prepared), skip_symbolic_shape=True)
        #: Nodes every quantization leaves in float (the embedding head, unless ``keep_fp32_head`` is off).
        self.head = default_fp32_nodes(load_onnx(self.prepared)) if self.settings.keep_fp32_head else []
        self._cache = self.work_dir / "calibration.json" if _has_calibration_cache() else None

    def quantize(self, name: str, exclude: Sequence[str] = (), only: Sequence[str] | None = None) -> Path:
        """Quantize into ``{work_dir}/{name}.onnx``, leaving the head and ``exclude`` in float; returns the path.

        ``only``: quantize just these nodes (a non-empty list; None: every node of the quantized op types).
        """
        out = self.work_dir / f"{name}.onnx"
        options: dict[str, Any] = {}
        reader: FaceCalibrationReader | None = self._reader
        if self._cache is not None:
            options["calibration_cache_path"] = str(self._cache)
            if self._cache.exists():
                reader = None
        if reader is not None:
            reader.rewind()
        settings = self.settings
        chatter = io.StringIO()
        # ORT's calibrators print progress on stdout; keep stdout for results (--json).
        with contextlib.redirect_stdout(chatter), _one_line_errors(self.source):
            quantization.quantize_static(
                str(self.prepared),
                str(out),
                reader,
                quant_format=quantization.QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS),
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                activation_type=_quant_type(settings.activation_type),
                weight_type=quantization.QuantType.QInt8,
                nodes_to_quantize=list(only) if only else None,
                nodes_to_exclude=[*self.head, *exclude] or None,
                calibrate_method=_method(settings.method),
                extra_options=_extra_options(settings),
                **options,
            )
        if chatter.getvalue().strip():
            log.debug("onnxruntime quantization: %s", " ".join(chatter.getvalue().split()))
        return out


def _has_calibration_cache() -> bool:
    """Whether the installed ONNX Runtime's ``quantize_static`` can keep its calibration in a file."""
    return "calibration_cache_path" in inspect.signature(quantization.quantize_static).parameters


@contextlib.contextmanager
def _one_line_errors(src: Path) -> Iterator[None]:
    """ORT's quantizer fails with bare ValueError/RuntimeError/...; name the model in one line."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"int8 quantization of {src} failed: {type(exc).__name__}: {first_line(exc)}") from exc


def _quant_type(name: str) -> Any:
    return quantization.QuantType.QUInt8 if name == "uint8" else quantization.QuantType.QInt8


def _method(name: str) -> Any:
    methods = quantization.CalibrationMethod
    return {"minmax": methods.MinMax, "entropy": methods.Entropy, "percentile": methods.Percentile}[name]


def _extra_options(settings: CalibrationSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"WeightSymmetric": True, "QuantizeBias": settings.quantize_bias}
    if settings.activation_type == "int8":
        # Signed activations need a zero point of 0 for the S8S8 kernels.
        options["ActivationSymmetric"] = True
    if settings.method == "percentile":
        options["CalibPercentile"] = settings.percentile
    return options
