"""``arcface-trt compare``: score backend B against backend A on the same face crops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, option, progress, stdout_console
from arcface_trt.cli.drift_budget import BudgetedEngineOption, budget_line, select_budgeted_engine
from arcface_trt.errors import InputError


def _table(result: Any) -> Any:
    from rich.table import Table

    a, b = result.backend_a, result.backend_b
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    table = Table(title=f"Parity: {_backend(b)} vs {_backend(a)} on {result.n_samples} crops  {verdict}")
    table.add_column("statistic")
    for column in ("mean", "min", "p01", "p50", "max"):
        table.add_column(column, justify="right")
    table.add_row("cosine", *(f"{result.cosine[k]:.6f}" for k in ("mean", "min", "p01", "p50", "max")))
    table.add_row("L2 distance", *(f"{result.l2[k]:.6f}" for k in ("mean", "min", "p01", "p50", "max")))
    table.caption = "\n".join(
        [
            f"nearest-neighbour agreement {_nn(result)} | worst drift (1 - min cosine) {_drift_text(result.max_drift)} "
            f"vs tolerance {_tolerance(result)}",
            *budget_line(b, result.max_drift_cosine),
            _speeds(result),
            *_input_lines([a, b], result.collapse),
        ]
    )
    return table


def _input_lines(backends: list[dict[str, Any]], collapse: list[Any]) -> list[str]:
    """The input spec each backend applied, how the reference computed, and the collapse guard's verdicts."""
    from rich.markup import escape

    from arcface_trt.backends.insightface_backend import REFERENCE_GET_FEAT
    from arcface_trt.model.input_spec import describe_spec

    specs = list(dict.fromkeys(describe_spec(b["input_spec"]) for b in backends))
    lines = [f"input spec: {escape(spec)}" for spec in specs]
    lines += [f"reference: {b['reference']}" for b in backends if b.get("reference") not in (None, REFERENCE_GET_FEAT)]
    for check in collapse:
        if check.collapsed:
            lines.append(f"[red]FAIL[/red] {escape(check.verdict())}")
    return lines


def _tolerance(stats: Any) -> str:
    """The tolerance applied and the setting it comes from: ``2.00e-03 (validation.max_drift_cosine_fp16)``."""
    return f"{stats.max_drift_cosine:.2e} ({stats.tolerance_key})"


def _drift_text(value: float) -> str:
    """A drift: ``0`` when it is below float32 precision (scored as exactly 0), else two significant digits."""
    return "0" if value == 0 else f"{value:.2e}"


def _nn(result: Any) -> str:
    return "n/a (fewer than 3 crops)" if result.nn_agreement is None else f"{result.nn_agreement:.1%}"


def _speeds(result: Any) -> str:
    """Which backend ran where at which precision, how fast, and how that was measured."""
    a, b = result.backend_a, result.backend_b
    return (
        f"A {_backend(a)} [{', '.join(a['providers'])}] {result.throughput_a:.1f} img/s | "
        f"B {_backend(b)} [{', '.join(b['providers'])}] {result.throughput_b:.1f} img/s\n"
        f"img/s: {result.speed_measured}"
    )


def _backend(info: dict[str, Any]) -> str:
    """A backend with the precision it ran at: ``onnxruntime int8``."""
    return f"{info['backend']} {info['precision']}"


def _points(difference: float | None) -> str:
    """A difference of two rates in percentage points."""
    return "" if difference is None else f"{difference * 100:+.2f} pp"


def _verdict(passed: bool) -> str:
    return "[green]pass[/green]" if passed else "[red]fail[/red]"


def _verification_table(result: Any) -> Any:
    """Identity-level figures first (rank-1, verification accuracy, AUC, EER, TAR); flips, gates, drift, speed below."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    a_info, b_info = result.backend_a, result.backend_b
    a, b, diff = result.verification.a, result.verification.b, result.verification.difference
    ident = result.identification
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    # The file name is the user's: shown as it is, never read as markup.
    where = f"{escape(Path(result.pair_set['source']).name)} ({a.pairs} pairs)"
    table = Table(
        title=f"{'Identity' if ident else 'Verification'} parity on {where}: B vs A  {verdict}", box=box.SIMPLE_HEAD
    )
    table.add_column("metric")
    table.add_column(f"A {_backend(a_info)}", justify="right")
    table.add_column(f"B {_backend(b_info)}", justify="right")
    table.add_column("B - A", justify="right")
    if ident:
        table.add_row("rank-1", f"{ident.rank1_a:.2%}", f"{ident.rank1_b:.2%}", _points(ident.difference))
    table.add_row(
        "accuracy, 10-fold",
        f"{a.accuracy:.2%} ± {a.accuracy_std:.2%}",
        f"{b.accuracy:.2%} ± {b.accuracy_std:.2%}",
        _points(diff["accuracy"]),
    )
    table.add_row("ROC AUC", f"{a.auc:.5f}", f"{b.auc:.5f}", f"{diff['auc']:+.5f}")
    table.add_row("EER", f"{a.eer:.2%}", f"{b.eer:.2%}", _points(diff["eer"]))
    too_small = []
    for row_a, row_b in zip(a.tar_at_far, b.tar_at_far, strict=True):
        label = f"TAR @ FAR {row_a.far:g}"
        if row_a.tar is None:
            table.add_row(label, "n/a", "n/a", "")
            too_small.append(f"{label} needs {row_a.different_pairs_needed} different-person pairs")
        else:
            table.add_row(label, f"{row_a.tar:.2%}", f"{row_b.tar:.2%}", _points(row_b.tar - row_a.tar))
    table.add_row(
        "threshold cos / L2²",
        f"{a.threshold['cosine']:.3f} / {a.threshold['l2_squared']:.2f}",
        f"{b.threshold['cosine']:.3f} / {b.threshold['l2_squared']:.2f}",
        "",
    )
    flips = result.verification.decision_flips
    pairs = result.pair_set
    lines = [
        f"pairs: {a.same_pairs} same, {a.different_pairs} different"
        + (f"; rank-1 over {ident.probes} probes of {ident.identities} people" if ident else ""),
        f"decisions that flip at A's threshold: {flips.count} of {a.pairs} "
        f"({flips.now_right} now right, {flips.now_wrong} now wrong)",
        f"accuracy drop (A - B) {max(result.accuracy_drop.values()) * 100:.2f} pp, allowed "
        f"{result.max_accuracy_drop * 100:.2f} pp: {_verdict(result.checks['accuracy'])}",
        f"worst drift (1 - min cosine) {_drift_text(result.max_drift)}, tolerance {_tolerance(result)}: "
        f"{_verdict(result.checks['drift'])}",
        *budget_line(b_info, result.max_drift_cosine),
        f"nearest-neighbour agreement {_nn(result)} (near-ties among non-matches, not identity)",
        f"{pairs['images']} distinct images, {max(pairs['images_resized'].values())} resized to the model input"
        + (", each with its mirror image (--flip)" if result.flip else ""),
        *too_small,
        _speeds(result),
        *_input_lines([a_info, b_info], result.collapse),
    ]
    return Group(table, *(Text.from_markup(line) for line in lines))


def compare(
    backend_a: Annotated[
        str, typer.Option("--backend-a", help=f"Reference backend: {common.BACKEND_CHOICES_TEXT}.")
    ] = "insightface",
    backend_b: Annotated[str, typer.Option("--backend-b", help="Backend under test.")] = "onnxruntime",
    onnx_path: common.OnnxPathOption = None,
    onnx_path_b: Annotated[
        Path | None, option("--onnx-path-b", help="Run backend B on this model instead of --onnx-path.")
    ] = None,
    n_samples: Annotated[
        int | None,
        option(
            "--n-samples",
            help="Seeded face-like crops to use (default: validation.n_samples); with --images/--npy, the first N "
            "(default: all).",
        ),
    ] = None,
    images: Annotated[Path | None, option("--images", help="Folder of face crops (jpg/png, recursive).")] = None,
    npy: Annotated[Path | None, option("--npy", help=".npy array of crops, shape (N, H, W, 3).")] = None,
    seed: Annotated[int | None, option("--seed", help="Seed of the generated crops.")] = None,
    device: common.DeviceOption = None,
    max_drift_cosine: Annotated[
        float | None,
        option(
            "--max-drift-cosine",
            help="Tolerance on the worst sample's 1 - cosine, for every precision of this run (default: "
            "validation.max_drift_cosine, _fp16 or _int8, after the precision compared).",
        ),
    ] = None,
    allow_cpu_fallback: common.AllowCpuFallbackOption = None,
    config: common.ConfigOption = None,
    output: Annotated[
        Path | None, option("--output", help="Also write the JSON report (with per-sample cosines) here.")
    ] = None,
    precision: Annotated[
        str | None,
        option(
            "--precision",
            help="Run backend B (onnxruntime) on its cached CPU engine of this precision: fp32 | fp16 | int8.",
        ),
    ] = None,
    precisions: Annotated[
        str | None,
        option(
            "--precisions",
            help="Drift report: backend B at each precision (e.g. fp32,fp16,int8) against the fp32 reference A.",
        ),
    ] = None,
    pairs: Annotated[
        Path | None,
        option(
            "--pairs",
            help="Verification on a pair set: InsightFace .bin, CSV (path_a,path_b,same) or LFW pairs.txt.",
        ),
    ] = None,
    images_root: Annotated[
        Path | None,
        option("--images-root", help="Images of an LFW pairs.txt: <root>/<name>/<name>_0001.jpg."),
    ] = None,
    identities: Annotated[
        Path | None,
        option(
            "--identities",
            help="Folder with one sub-folder of crops per person: rank-1 identification and verification.",
        ),
    ] = None,
    flip: Annotated[
        bool,
        typer.Option("--flip", help="With --pairs/--identities: add each image's mirror image (as InsightFace)."),
    ] = False,
    max_accuracy_drop: Annotated[
        float | None,
        option(
            "--max-accuracy-drop",
            help="Largest allowed drop of B's accuracy below A's, a fraction (default: validation.max_accuracy_drop).",
        ),
    ] = None,
    plot: Annotated[
        Path | None, option("--plot", help="With --pairs/--identities: draw both ROC curves into this PNG.")
    ] = None,
    drift_budget: BudgetedEngineOption = None,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Score backend B against backend A by cosine similarity and L2 distance; exit 1 when drift is above tolerance.

    The tolerance applies to the worst sample: the check passes when 1 - min(cosine) <= max_drift_cosine,
    the key of the precision compared (validation.max_drift_cosine, _fp16, _int8). With --precisions, one row
    per precision, each checked against its own tolerance.

    With --pairs or --identities, each backend's verification accuracy (10-fold), AUC, EER and TAR at
    FAR lead, with the pair decisions that flip; exit 1 also when B's accuracy drops by more than
    max_accuracy_drop.

    Exit 1 also when the embeddings of clearly different faces collapse (the input spec is wrong).

    With --drift-budget D, B runs the engine made for that budget (a search builds it when it is not cached);
    D is shown beside the tolerance, which still decides pass/fail.
    """
    from arcface_trt.parity import CompareRequest, precision_choice, run_compare

    inputs = common.input_settings(input_mean, input_std, input_color)

    identity_level = pairs is not None or identities is not None
    if not identity_level:
        given = {"--flip": flip or None, "--images-root": images_root, "--max-accuracy-drop": max_accuracy_drop}
        for name, value in {**given, "--plot": plot}.items():
            if value is not None:
                raise InputError(f"{name} goes with --pairs or --identities")
    chosen = precision_choice(precision, precisions)

    request = CompareRequest(
        backend_a=backend_a,
        backend_b=backend_b,
        onnx_path=str(onnx_path) if onnx_path else None,
        onnx_path_b=str(onnx_path_b) if onnx_path_b else None,
        n_samples=n_samples,
        images=str(images) if images else None,
        npy=str(npy) if npy else None,
        seed=seed,
        device=device,
        max_drift_cosine=max_drift_cosine,
        allow_cpu_fallback=allow_cpu_fallback,
        config=str(config) if config else None,
        precision_b=chosen[0] if precision is not None and chosen else None,
        precisions=chosen if precisions is not None else None,
        pairs=str(pairs) if pairs else None,
        images_root=str(images_root) if images_root else None,
        identities=str(identities) if identities else None,
        flip=flip,
        max_accuracy_drop=max_accuracy_drop,
        inputs=inputs,
        drift_budget=drift_budget,
    )
    if drift_budget is not None:
        _select_budget(request, json_output)
    if identity_level:
        _verify(request, plot, output, json_output)
        return
    if request.precisions:
        _drift(request, n_samples, output, json_output)
        return
    total = 2 * (n_samples or 100)
    with progress("comparing", total, enabled=not json_output) as advance:
        result = run_compare(request, advance)
    _finish(result, _table, output, json_output, per_sample=True)


def _select_budget(request: Any, json_output: bool) -> None:
    """``--drift-budget``: B's engine of that budget, from the cache or built by a search (before any embedding)."""
    from arcface_trt.budget.request import budgets_for
    from arcface_trt.config import load_config
    from arcface_trt.names import canonical_backend

    if request.precisions is not None:
        raise InputError("--drift-budget goes with --precision (one precision), not --precisions")
    cfg = load_config(request.config)
    tensorrt = canonical_backend(request.backend_b) == "tensorrt"
    precision = cfg.tensorrt.tensorrt.precision if tensorrt else request.precision_b
    budgets_for([precision], request.drift_budget)
    select_budgeted_engine(request.spec_b(request.precision_b, cfg), json_output)


def _drift(request: Any, n_samples: int | None, output: Path | None, json_output: bool) -> None:
    """The --precisions path: run the drift report, render it, exit 1 when a row fails."""
    from arcface_trt.parity import run_drift

    total = (1 + len(request.precisions)) * (n_samples or 100)
    with progress("drift report", total, enabled=not json_output) as advance:
        report = run_drift(request, advance)
    _finish(report, _drift_table, output, json_output)


def _verify(request: Any, plot: Path | None, output: Path | None, json_output: bool) -> None:
    """The --pairs/--identities path: verification of both backends, the ROC chart, exit 1 when a gate fails."""
    from arcface_trt.verification.job import run_verification

    if plot is not None:
        from arcface_trt.charts import check_png_path, require_matplotlib

        check_png_path(plot)
        require_matplotlib()  # before minutes of embedding, not after
    with progress("embedding", None, enabled=not json_output) as advance:
        result = run_verification(request, advance)
    if plot is not None:
        from arcface_trt.verification.plot import plot_roc

        plot_roc(result, plot)
    _finish(result, _verification_table, output, json_output, per_sample=True)


def _finish(outcome: Any, table: Callable[[Any], Any], output: Path | None, json_output: bool, **saved: Any) -> None:
    """Write ``outcome.to_dict(**saved)`` to --output, print the outcome (JSON or its table), exit 1 when it failed."""
    from arcface_trt.fileio import write_text_atomic
    from arcface_trt.records import json_text

    if output is not None:
        write_text_atomic(output, json_text(outcome.to_dict(**saved)))
    if json_output:
        emit_json(outcome.to_dict())
    else:
        stdout_console().print(table(outcome))
    if not outcome.passed:
        raise typer.Exit(1)


def _drift_table(report: Any) -> Any:
    from rich import box
    from rich.table import Table

    ref = report.reference
    verdict = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
    # No vertical rules, and L2 (it follows from the cosine; the JSON has it): the columns must fit 80 characters.
    table = Table(
        title=f"Precision drift against {ref['backend']} fp32 on {report.n_samples} crops  {verdict}",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for column in ("precision", "cos mean", "cos min", "cos p01", "NN", "img/s", "speed", "check"):
        table.add_column(column, justify="left" if column in ("precision", "check") else "right")
    for row in report.rows:
        nn = "n/a" if row.nn_agreement is None else f"{row.nn_agreement:.1%}"
        table.add_row(
            # A fallback ran something else: say what.
            row.precision if row.backend["precision"] == row.precision else f"{row.precision}*",
            f"{row.cosine['mean']:.6f}",
            f"{row.cosine['min']:.6f}",
            f"{row.cosine['p01']:.6f}",
            nn,
            f"{row.throughput:.1f}",
            f"{row.speedup:.2f}x",
            # The tolerance this row was judged by (its precision's key, or --max-drift-cosine): caption.
            f"{_verdict(row.passed)} ≤{row.max_drift_cosine:g}",
        )
    table.caption = "\n".join(
        [
            f"B: {report.rows[0].backend['backend']} CPU engines | reference {_backend(ref)} "
            f"[{', '.join(ref['providers'])}] {report.throughput_reference:.1f} img/s",
            f"img/s: {report.speed_measured}; speed: img/s over the reference's",
            f"check: 1 - min cosine ≤ {_tolerance_keys(report.rows)}",
            *_input_lines([ref, *(row.backend for row in report.rows)], report.collapse),
        ]
    )
    return table


def _tolerance_keys(rows: list[Any]) -> str:
    """Which setting each row's tolerance comes from, once per distinct setting."""
    keys: dict[str, list[str]] = {}
    for row in rows:
        keys.setdefault(row.tolerance_key, []).append(row.precision)
    return "; ".join(f"{key} ({', '.join(precisions)})" for key, precisions in keys.items())
