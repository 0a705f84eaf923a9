"""Compare two embedders on the same crops: cosine, L2, nearest-neighbour agreement, speed.

The tolerance applies to the WORST sample: the check passes when ``1 - min(cosine) <= max_drift_cosine``.
Each precision has its own tolerance (``validation.max_drift_cosine``, ``..._fp16``, ``..._int8``), chosen
by the least precise of the two backends compared (:func:`drift_tolerance`); every result names the key it
applied. Mean and percentiles are reported beside it.
Two backends can agree on garbage (both fed the wrong input): every comparison also runs the
collapse guard (:mod:`arcface_trt.collapse`) on each backend, and collapsed embeddings fail it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from arcface_trt.backends import create_embedder
from arcface_trt.backends.base import BackendInfo, Embedder
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.bench.stats import throughput
from arcface_trt.bench.timing import TimingPlan, ignore_result, run_interleaved
from arcface_trt.collapse import CollapseCheck, check_collapse
from arcface_trt.config import EmbeddingConfig, Tolerance, ValidationSection, load_config, with_overrides
from arcface_trt.errors import InputError
from arcface_trt.inputs import load_crops
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.names import PRECISIONS
from arcface_trt.preprocess import l2_normalize

log = logging.getLogger("arcface_trt")


def summarize(values: np.ndarray) -> dict[str, float]:
    """mean, min, p01, p50, max of a 1-D array (float64 for JSON)."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "min": float(v.min()),
        "p01": float(np.percentile(v, 1)),
        "p50": float(np.percentile(v, 50)),
        "max": float(v.max()),
    }


def nearest_neighbours(embeddings: np.ndarray) -> np.ndarray:
    """Index of each row's nearest other row by cosine (rows are L2-normalised)."""
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -np.inf)
    return np.argmax(sims, axis=1)


@dataclass(kw_only=True)
class DriftStats:
    """Embedding drift of backend B against reference A: the one scoring result every report shares.

    Truthy when it passed: ``1 - min(cosine) <= max_drift_cosine`` on the worst sample.
    """

    cosine: dict[str, float]
    l2: dict[str, float]
    nn_agreement: float | None
    max_drift: float
    max_drift_cosine: float
    #: The setting ``max_drift_cosine`` comes from (``validation.max_drift_cosine_fp16``, ``--max-drift-cosine``).
    tolerance_key: str
    passed: bool

    def __bool__(self) -> bool:
        return self.passed


#: Where a tolerance given for one run comes from; it applies to every precision of that run.
RUN_OVERRIDE = "--max-drift-cosine"


def drift_tolerance(
    validation: ValidationSection, backends: Sequence[BackendInfo], override: float | None = None
) -> Tolerance:
    """The tolerance of a comparison: ``override`` (given for one run) when set, else the key of the least
    precise precision the compared ``backends`` ran at (the drift comes from it)."""
    if override is not None:
        return Tolerance(override, RUN_OVERRIDE)
    return validation.drift_tolerance(max((info.precision for info in backends), key=PRECISIONS.index))


#: Embeddings are float32: a cosine within this of 1 is equal to 1 at the precision they carry.
FLOAT32_RESOLUTION = float(np.finfo(np.float32).eps)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity of ``a`` and ``b`` in float64, in [-1, 1].

    Rows are renormalised here: float32 L2 normalisation leaves norms off 1 by about 1e-7, which
    would make identical embeddings score 1.00000007 and a drift of 1e-7. Rows that cannot be
    normalised (zero, NaN) give NaN, which fails every check.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    return np.clip(raw, -1.0, 1.0)


def score(a: np.ndarray, b: np.ndarray, tolerance: Tolerance) -> tuple[DriftStats, np.ndarray]:
    """Statistics of embeddings ``b`` against reference ``a`` (both L2-normalised, same shape); per-sample cosines."""
    if a.shape != b.shape:
        raise InputError(f"the backends give embeddings of different shapes: {a.shape} vs {b.shape}")
    cosine = cosines(a, b)
    l2 = np.linalg.norm(a.astype(np.float64) - b.astype(np.float64), axis=1)
    nn = None
    if len(a) >= 3:
        nn = float(np.mean(nearest_neighbours(a) == nearest_neighbours(b)))
    max_drift = float(1.0 - cosine.min())
    if max_drift < FLOAT32_RESOLUTION:
        max_drift = 0.0
    finite = bool(np.isfinite(cosine).all())
    stats = DriftStats(
        cosine=summarize(cosine),
        l2=summarize(l2),
        nn_agreement=nn,
        max_drift=max_drift,
        max_drift_cosine=tolerance.value,
        tolerance_key=tolerance.key,
        passed=finite and max_drift <= tolerance.value,
    )
    return stats, cosine


@dataclass(kw_only=True)
class ParityResult(DriftStats):
    """Outcome of a comparison of B against A; truthy when it passed, printable as a dict."""

    backend_a: dict[str, Any]
    backend_b: dict[str, Any]
    n_samples: int
    throughput_a: float
    throughput_b: float
    #: How the throughputs were measured (:func:`speeds`).
    speed_measured: str
    per_sample_cosine: list[float] = field(default_factory=list, repr=False)
    #: The collapse guard of A and B (a collapsed one fails the comparison).
    collapse: list[CollapseCheck] = field(default_factory=list)

    def to_dict(self, per_sample: bool = False) -> dict[str, Any]:
        """JSON-friendly record (per-sample cosines only on request)."""
        data = asdict(self)
        if not per_sample:
            data.pop("per_sample_cosine")
        data["tolerance_applies_to"] = "worst sample: 1 - min(cosine) <= max_drift_cosine (from tolerance_key)"
        return data


def _mirrored(crops: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Each crop flipped left to right (contiguous, as the preprocessing wants)."""
    return [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]


def measure(
    embedder: Embedder,
    crops: Sequence[np.ndarray] | np.ndarray,
    chunk: int,
    advance: Callable[[int], None] | None = None,
    flip: bool = False,
) -> np.ndarray:
    """Encode ``crops`` in chunks (so progress can move); return the embeddings.

    With ``flip``, each embedding is the normalised sum of the crop's and its mirror image's
    (InsightFace's evaluation does the same). The pass is not timed: its first calls pay for
    warm-up (:func:`speeds` times the backends).
    """
    embedder.ensure_ready()
    parts = []
    for i in range(0, len(crops), chunk):
        part = crops[i : i + chunk]
        embeddings = embedder.encode(part)
        if flip:
            embeddings = l2_normalize(embeddings + embedder.encode(_mirrored(part)))
        parts.append(embeddings)
        if advance:
            advance(len(part))
    return np.concatenate(parts, axis=0)


#: How a comparison times its backends: each warmed up, then all timed round-robin for 0.3 s each (at least three
#: calls). A comparison's speed column shows the order of magnitude beside the drift; figures to quote come
#: from ``benchmark``, which times for longer.
SPEED_PLAN = TimingPlan(duration_s=0.3, warmup_s=0.1)


def speeds(
    embedders: Sequence[Embedder], crops: Sequence[np.ndarray] | np.ndarray, chunk: int, plan: TimingPlan = SPEED_PLAN
) -> tuple[list[float], str]:
    """Images/s of each embedder's ``encode`` on one batch of ``crops``, and how that was measured.

    Warm-up is excluded and the backends are timed interleaved (round-robin), so a first call or
    load that comes and goes on a shared machine does not favour one of them.
    """
    batch = crops[: min(chunk, len(crops))]
    functions = {str(i): ignore_result(lambda e=e: e.encode(batch)) for i, e in enumerate(embedders)}
    samples = run_interleaved(functions, plan)
    how = f"encode() of one batch of {len(batch)} crops per backend, {plan.sentence()} each, round-robin (interleaved)"
    return [throughput(len(batch), samples[str(i)].host_ms) for i in range(len(embedders))], how


def compare_embedders(
    a: Embedder,
    b: Embedder,
    crops: Sequence[np.ndarray] | np.ndarray,
    validation: ValidationSection,
    advance: Callable[[int], None] | None = None,
) -> DriftStats:
    """Run both embedders on ``crops`` and score B against A with the tolerance of their precisions (no timing)."""
    if len(crops) == 0:
        raise InputError("no face crops to compare")
    chunk = max(a.batch_size, b.batch_size)
    emb_a = measure(a, crops, chunk, advance)
    emb_b = measure(b, crops, chunk, advance)
    return score(emb_a, emb_b, drift_tolerance(validation, [a.info(), b.info()]))[0]


@dataclass(frozen=True)
class CompareRequest:
    """Everything ``arcface-trt compare`` needs; None means "from the config"."""

    backend_a: str = "insightface"
    backend_b: str = "onnxruntime"
    onnx_path: str | None = None
    onnx_path_b: str | None = None
    n_samples: int | None = None
    images: str | None = None
    npy: str | None = None
    seed: int | None = None
    device: str | None = None
    max_drift_cosine: float | None = None
    allow_cpu_fallback: bool | None = None
    config: str | None = None
    #: Precision of backend B's CPU engine (onnxruntime only); None: the model as it is.
    precision_b: str | None = None
    #: Drift report: backend B at each of these precisions against A (see :func:`run_drift`).
    precisions: tuple[str, ...] | None = None
    #: Verification on a pair set (``.bin``, ``.csv`` or LFW ``pairs.txt``; see ``arcface_trt.verification``).
    pairs: str | None = None
    #: Folder of an LFW ``pairs.txt``'s images.
    images_root: str | None = None
    #: Identity folder (one sub-folder per person): rank-1 identification and the pairs it implies.
    identities: str | None = None
    #: Embed each image with its mirror image too (InsightFace's evaluation does).
    flip: bool = False
    max_accuracy_drop: float | None = None
    #: Explicit input settings of the command line (over the config's ``embedding.input_*``), for both backends.
    inputs: InputSettings | None = None
    #: Backend B runs the engine made for this drift budget (its build target; the pass/fail stays
    #: ``max_drift_cosine``). None: the engine without a budget.
    drift_budget: float | None = None

    def spec_b(self, precision: str | None, cfg: EmbeddingConfig) -> BackendSpec:
        """The backend spec of B at ``precision`` under the loaded config ``cfg``."""
        return BackendSpec.resolve(
            self.backend_b,
            onnx_path=self.onnx_path_b or self.onnx_path,
            precision=precision,
            drift_budget=self.drift_budget,
            device=self.device,
            allow_cpu_fallback=self.allow_cpu_fallback,
            config=cfg,
            inputs=self.inputs,
        )


def _prepare(
    request: CompareRequest, crops: Sequence[np.ndarray] | None = None
) -> tuple[EmbeddingConfig, ValidationSection, Sequence[np.ndarray] | np.ndarray]:
    """The loaded config, its validation section with the request's overrides, and the crops (unless given)."""
    cfg = load_config(request.config)
    # --max-drift-cosine is checked here (range) and applied to every precision by drift_tolerance.
    validation = with_overrides(
        cfg.validation,
        "validation",
        max_drift_cosine=request.max_drift_cosine,
        max_accuracy_drop=request.max_accuracy_drop,
        n_samples=request.n_samples,
        seed=request.seed,
    )
    if request.n_samples is not None and request.n_samples < 1:
        raise InputError(f"--n-samples must be at least 1, got {request.n_samples}")
    if crops is None:
        crops = load_crops(validation.n_samples, request.images, request.npy, validation.seed, request.n_samples)
    if len(crops) == 0:
        raise InputError("no face crops to compare")
    return cfg, validation, crops


@dataclass
class Scored:
    """Backend B at one precision, scored against A."""

    embedder: Embedder
    embeddings: np.ndarray
    stats: DriftStats
    cosine: np.ndarray
    throughput: float


@dataclass
class Scoring:
    """Reference A's embeddings and each backend B scored against them: what compare and its reports build on."""

    validation: ValidationSection
    reference: Embedder
    embeddings: np.ndarray
    throughput: float
    #: How the throughputs were measured (:func:`speeds`).
    speed_measured: str
    n_samples: int
    rows: list[Scored]
    #: The collapse guard of A, then of each B.
    collapse: list[CollapseCheck] = field(default_factory=list)

    @property
    def collapsed(self) -> bool:
        """True when a backend's embeddings collapsed: the comparison fails whatever the drift."""
        return any(check.collapsed for check in self.collapse)


def score_backends(
    request: CompareRequest,
    precisions: Sequence[str | None],
    advance: Callable[[int], None] | None,
    crops: Sequence[np.ndarray] | None = None,
) -> Scoring:
    """The core of compare, the drift report and verification: A once, then B at each precision, scored against A.

    ``crops`` (default: from the request's ``--images``/``--npy``/``--n-samples``) are embedded
    with their mirror images too when ``request.flip`` is set.
    """
    cfg, validation, crops = _prepare(request, crops)
    common = {
        "device": request.device,
        "allow_cpu_fallback": request.allow_cpu_fallback,
        "config": cfg,
        "inputs": request.inputs,
    }
    a = create_embedder(BackendSpec.resolve(request.backend_a, onnx_path=request.onnx_path, **common))
    embedders = [create_embedder(request.spec_b(precision, cfg)) for precision in precisions]
    chunk = max(a.batch_size, *(b.batch_size for b in embedders))
    emb_a = measure(a, crops, chunk, advance, request.flip)
    scored = []
    for b in embedders:
        emb_b = measure(b, crops, chunk, advance, request.flip)
        tolerance = drift_tolerance(validation, [a.info(), b.info()], request.max_drift_cosine)
        scored.append((b, emb_b, *score(emb_a, emb_b, tolerance)))
    (fps_a, *fps_b), how = speeds([a, *embedders], crops, chunk)
    rows = [Scored(b, emb_b, stats, cosine, fps) for (b, emb_b, stats, cosine), fps in zip(scored, fps_b, strict=True)]
    collapse = [check_collapse(embedder, validation.collapse_cosine) for embedder in (a, *embedders)]
    for check in collapse:
        if check.collapsed:
            log.warning("%s", check.message())
    return Scoring(validation, a, emb_a, fps_a, how, len(crops), rows, collapse)


def run_compare(request: CompareRequest, advance: Callable[[int], None] | None = None) -> ParityResult:
    """Load config, both backends and the crops; compare B against A."""
    return parity_result(score_backends(request, [request.precision_b], advance))


def parity_result(scoring: Scoring) -> ParityResult:
    """The comparison of the one backend B in ``scoring`` against A."""
    (b,) = scoring.rows
    return ParityResult(
        **{**vars(b.stats), "passed": b.stats.passed and not scoring.collapsed},
        backend_a=scoring.reference.info().to_dict(),
        backend_b=b.embedder.info().to_dict(),
        n_samples=scoring.n_samples,
        throughput_a=scoring.throughput,
        throughput_b=b.throughput,
        speed_measured=scoring.speed_measured,
        per_sample_cosine=[float(c) for c in b.cosine],
        collapse=scoring.collapse,
    )


def parse_precisions(text: str, option: str = "--precisions") -> tuple[str, ...]:
    """``"fp32,fp16,int8"`` -> ``("fp32", "fp16", "int8")``; unknown or repeated names are an InputError naming
    ``option``, the option the user gave them with."""
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not names:
        raise InputError(f"{option} needs at least one of {', '.join(PRECISIONS)}")
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown:
        raise InputError(f"unknown precision {', '.join(unknown)} in {option} (choose {', '.join(PRECISIONS)})")
    if len(set(names)) != len(names):
        raise InputError(f"{option} names a precision twice: {text}")
    return names


def precision_choice(precision: str | None, precisions: str | None) -> tuple[str, ...] | None:
    """The precisions of ``--precision P`` (one) or ``--precisions P,Q`` (a list); None when neither was given.

    compare and benchmark share this convention; each message names the option the user gave.
    """
    if precision is not None and precisions is not None:
        raise InputError("give either --precision or --precisions, not both")
    if precision is not None:
        names = parse_precisions(precision, "--precision")
        if len(names) != 1:
            raise InputError(f"--precision takes one precision, got '{precision}' (use --precisions for several)")
        return names
    return None if precisions is None else parse_precisions(precisions)


@dataclass(kw_only=True)
class DriftRow(DriftStats):
    """One precision of the drift report: its statistics against the fp32 reference and its speed."""

    precision: str
    backend: dict[str, Any]
    throughput: float
    #: ``throughput / reference throughput``.
    speedup: float


@dataclass
class DriftReport:
    """Backend B at several precisions, each scored against reference A with its own tolerance; truthy when every
    row passed."""

    reference: dict[str, Any]
    n_samples: int
    throughput_reference: float
    #: How the throughputs were measured (:func:`speeds`).
    speed_measured: str
    rows: list[DriftRow]
    passed: bool
    #: The collapse guard of the reference, then of B at each precision (a collapsed one fails the report).
    collapse: list[CollapseCheck] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        data = asdict(self)
        data["tolerance_applies_to"] = (
            "worst sample of each precision: 1 - min(cosine) <= the row's max_drift_cosine (from its tolerance_key)"
        )
        return data


def run_drift(request: CompareRequest, advance: Callable[[int], None] | None = None) -> DriftReport:
    """Drift report: backend B's CPU engine at each of ``request.precisions`` against backend A.

    A is the fp32 reference (by default the InsightFace backend on the fp32 model); the
    embeddings of A are computed once. Each row holds cosine and L2 statistics, the
    nearest-neighbour agreement and B's throughput at that precision.
    """
    if not request.precisions:
        raise InputError("no precisions to report on")
    scoring = score_backends(request, request.precisions, advance)
    fps_a = scoring.throughput
    rows = [
        DriftRow(
            **vars(b.stats),
            precision=precision,
            backend=b.embedder.info().to_dict(),
            throughput=b.throughput,
            speedup=b.throughput / fps_a if fps_a > 0 else float("nan"),
        )
        for precision, b in zip(request.precisions, scoring.rows, strict=True)
    ]
    return DriftReport(
        reference=scoring.reference.info().to_dict(),
        n_samples=scoring.n_samples,
        throughput_reference=fps_a,
        speed_measured=scoring.speed_measured,
        rows=rows,
        passed=all(row.passed for row in rows) and not scoring.collapsed,
        collapse=scoring.collapse,
    )
