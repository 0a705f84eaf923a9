"""Drift-budget options shared by ``build`` and ``quantize`` (``compare`` and ``benchmark`` take ``--drift-budget``),
and the human rendering of a search record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli.common import option, printable

DriftBudgetOption = Annotated[
    float | None,
    option(
        "--drift-budget",
        help="fp16/int8: keep the fewest nodes in full precision such that the worst-sample drift "
        "(1 - cosine to fp32) on held-out crops is at most this, e.g. 0.002; the engine's name carries it.",
    ),
]
BudgetedEngineOption = Annotated[
    float | None,
    option(
        "--drift-budget",
        help="Use the engine made for this drift budget (fp16/int8; searched for and built when not cached).",
    ),
]
SearchTimeoutOption = Annotated[
    float | None,
    option(
        "--search-timeout",
        help="With --drift-budget: stop the search after this many seconds, with the best result so far.",
    ),
]
EvalImagesOption = Annotated[
    Path | None,
    option(
        "--eval-images",
        help="With --drift-budget: held-out crops to measure drift on (folder, list file or .npy; at least 50). "
        "Default: 60 seeded crops of 3 sample identities the calibration never sees.",
    ),
]
CurvePlotOption = Annotated[
    Path | None,
    option("--plot", help="With --drift-budget: draw the search's curve (drift and speed vs nodes kept) to this PNG."),
]


def budget_request(
    drift_budget: float | None,
    precision: str | None,
    calibration: Any,
    eval_images: Path | None,
    search_timeout: float | None,
    plot: Path | None,
) -> Any:
    """The :class:`~arcface_trt.budget.request.DriftBudgetRequest` of the options, or None without ``--drift-budget``.

    The search's options without ``--drift-budget`` are an InputError; ``--plot`` is checked (and
    matplotlib loaded) before the search, not after it.
    """
    from arcface_trt.errors import InputError

    if drift_budget is None:
        given = {"--search-timeout": search_timeout, "--eval-images": eval_images, "--plot": plot}
        for name, value in given.items():
            if value is not None:
                raise InputError(f"{name} goes with --drift-budget")
        return None
    from arcface_trt.budget.crops import EvaluationSettings
    from arcface_trt.budget.request import DriftBudgetRequest

    request = DriftBudgetRequest(
        budget=drift_budget,
        precision=precision or "",
        calibration=calibration,
        evaluation=EvaluationSettings(images=str(eval_images) if eval_images else None),
        timeout_s=search_timeout,
    )
    if plot is not None:
        from arcface_trt.charts import check_png_path, require_matplotlib

        check_png_path(plot)
        require_matplotlib()
    return request


def _crops(record: dict[str, Any] | None) -> str:
    if not record:
        return "none (fp16 needs no calibration)"
    if record.get("images"):
        skipped = f", {record['skipped']} unreadable skipped" if record.get("skipped") else ""
        return f"{record['crops']} crops of {printable(record['images'])}{skipped}"
    identities = ", ".join(str(i) for i in record.get("identities") or [])
    return f"{record['crops']} seeded crops of sample identities {identities} (seed {record['seed']})"


def _speed(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def search_lines(record: dict[str, Any], searched: bool) -> list[str]:
    """A search record (a manifest's ``drift_budget``) as lines for a person: result, nodes, sets, curve."""
    lines = [
        f"drift budget: {record['budget']:g} ({record['evaluation_mode']})",
        f"result:       {printable(record['message'])}",
    ]
    if record.get("proxy"):
        lines.append(f"measured by:  {record['proxy']}")
    final = record.get("final_check")
    if final:
        speed = (
            f"; {final['throughput']:.1f} img/s against fp32's {final['fp32_throughput']:.1f}, timed together"
            if final.get("throughput") and final.get("fp32_throughput")
            else ""
        )
        lines.append(
            f"final check:  worst drift {final['max_drift']:.2e}, mean {final['mean_drift']:.2e} on "
            f"{final['crops']} held-out crops{speed}"
        )
    head, searched_nodes = record["always_kept"], record["searched_nodes_kept"]
    lines.append(
        f"kept in full precision: {len(head) + len(searched_nodes)} nodes: embedding head "
        f"({printable(', '.join(head)) or 'none'})"
        + (f" + {printable(', '.join(searched_nodes))}" if searched_nodes else "")
    )
    lines.append(f"calibration:  {_crops(record['calibration'])}")
    lines.append(f"evaluation:   {_crops(record['evaluation'])}")
    seconds = record.get("seconds") or {}
    if not searched:
        lines.append("search:       not run (the cached engine was made for this budget and these crops)")
    else:
        reuse = "reused from the cache" if record["sensitivities_from_cache"] else "measured"
        parts = ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items() if name != "total")
        lines.append(
            f"search:       {seconds.get('total', 0):.0f} s ({parts or 'one step'}); "
            f"sensitivities of {record['groups']} groups {reuse}"
        )
    lines.append("curve:        step  groups  nodes  worst drift  mean drift  img/s  x fp32 (timed together)")
    for row in record["curve"]:
        mark = " <- chosen" if row["chosen"] else ""
        speedup = "-" if row["speedup"] is None else f"{row['speedup']:.2f}"
        lines.append(
            f"              {row['step']:>4}  {row['groups_kept']:>6}  {row['nodes_kept']:>5}  "
            f"{row['max_drift']:>11.2e}  {row['mean_drift']:>10.2e}  {_speed(row['throughput']):>5}  "
            f"{speedup:>6}{mark}"
        )
    return lines


def finish_search(record: dict[str, Any], plot: Path | None) -> None:
    """Draw ``--plot``; then a failed search (budget impossible, time out) ends the command: one line, exit 1."""
    from arcface_trt.errors import CheckFailedError

    if plot is not None:
        from arcface_trt.budget.plot import plot_curve

        plot_curve(record, plot)
    if record["status"] not in ("within-budget", "no-speedup"):
        raise CheckFailedError(record["message"])


def echo_search(record: dict[str, Any], searched: bool) -> None:
    """Print :func:`search_lines`."""
    typer.echo("\n".join(search_lines(record, searched)))


def select_budgeted_engine(spec: Any, json_output: bool) -> None:
    """Make sure the budget's engine of ``spec`` is cached (a search builds a missing one); exit 1 when none is."""
    from arcface_trt.budget.select import ensure_budgeted_engine
    from arcface_trt.cli.common import status
    from arcface_trt.errors import CheckFailedError

    selection = ensure_budgeted_engine(spec, lambda message: status(message, enabled=not json_output))
    if not selection.found:
        raise CheckFailedError(selection.record["message"])


def budget_line(backend: dict[str, Any], tolerance: float) -> list[str]:
    """The line a comparison shows for an engine made for a drift budget (none for another engine)."""
    summary = backend.get("drift_budget")
    if not summary:
        return []
    measured = summary.get("measured_max_drift")
    at_build = (
        f"measured {measured:.2e} on {summary.get('evaluation_crops')} held-out crops at build, "
        f"{summary.get('evaluation_mode')}"
        if measured is not None
        else "no final check recorded"
    )
    return [
        f"drift budget {summary['budget']:g}: B's engine was built within it ({at_build}); "
        f"pass/fail here is the tolerance {tolerance:.2e}"
    ]
