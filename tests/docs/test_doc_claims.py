"""What README.md and docs/*.md claim, checked against the tool: every command they show exists with its options,
the README tour runs on the CPU as a real process, and the claims once found false stay true."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import typer.main

from arcface_trt.cli.app import app
from arcface_trt.names import ENDPOINT_ENV_VARS, REGION_ENV_VARS
from tests.support.cli import run_cli
from tests.support.paths import REPO

#: The prose documents (docs/cli.md is generated from --help and checked by test_cli_reference_is_current).
DOCS = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "cli.md")]
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
CALL = re.compile(r"^\s*arcface-trt\s+([a-z][a-z-]*)(.*)$")


def _params() -> dict[str, dict[str, object]]:
    """command -> option name -> its click parameter."""
    group = typer.main.get_command(app)
    return {
        name: {opt: param for param in command.params for opt in [*param.opts, *param.secondary_opts]}
        for name, command in group.commands.items()
    }


def _calls(text: str) -> list[list[str]]:
    """Each ``arcface-trt COMMAND ...`` line of the code blocks in ``text``."""
    return [call for block in FENCE.findall(text) for call in _block_calls(block)]


def _block_calls(block: str) -> list[list[str]]:
    """Each ``arcface-trt COMMAND ...`` line of one code block (continuations joined, comments cut)."""
    calls = []
    for line in block.replace("\\\n", " ").splitlines():
        match = CALL.match(line.split(" #")[0])
        if match:
            calls.append([match.group(1), *shlex.split(match.group(2))])
    return calls


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level (``#`` lines inside code
    blocks are comments, not headings)."""
    level = len(heading.split()[0])
    lines = text.splitlines(keepends=True)
    start = lines.index(heading + "\n")
    fenced = False
    for end in range(start + 1, len(lines)):
        fenced ^= lines[end].startswith("```")
        marks = len(lines[end]) - len(lines[end].lstrip("#"))
        if not fenced and 0 < marks <= level and lines[end][marks : marks + 1] == " ":
            return "".join(lines[start:end])
    return "".join(lines[start:])


def test_every_documented_call_names_a_command_and_its_options() -> None:
    params = _params()
    checked = 0
    for path in DOCS:
        for name, *args in _calls(path.read_text()):
            assert name in params, f"{path.name}: arcface-trt {name} is not a command"
            for arg in args:
                option = arg.split("=")[0]
                if option.startswith("--"):
                    assert option in params[name], f"{path.name}: arcface-trt {name} has no {option}"
            checked += 1
    assert checked >= 40


def test_quantize_defaults_are_the_ones_documented() -> None:
    """docs/precision.md once gave quantize the defaults of build --target cpu (uint8, automatic reduce-range)."""
    quantize, build = _params()["quantize"], _params()["build"]
    assert quantize["--activation-type"].default == "int8"
    # build's default depends on the target (None here): uint8 on the CPU, which its help says
    assert build["--activation-type"].default is None and "the CPU default" in build["--activation-type"].help
    assert quantize["--reduce-range"].default is False
    table = (REPO / "docs" / "precision.md").read_text()
    assert "| activations | `--activation-type` | `build --target cpu`: `uint8`; `quantize`: `int8` |" in table
    assert "`build --target cpu`: auto; `quantize`: off" in table


def test_installing_names_the_extra_the_tour_needs() -> None:
    readme = (REPO / "README.md").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    tour_extras = {"plot"} if "--plot" in _section(readme, "## A 5-minute tour") else set()
    installing = _section(readme, "## Installing")
    for extra in tour_extras:
        assert re.search(rf"^{extra} = \[", pyproject, re.M) and f"pip install '.[{extra}]'" in installing


def test_endpoint_and_region_variables_are_named_alike_everywhere() -> None:
    engines = (REPO / "docs" / "engines.md").read_text()
    reference = (REPO / "docs" / "cli.md").read_text()  # the --help of every store command
    for names in (ENDPOINT_ENV_VARS, REGION_ENV_VARS):
        assert ", then ".join(f"`${name}`" for name in names) in engines
        assert ", then ".join(f"${name}" for name in names) in reference


def test_the_old_diagnose_key_appears_only_where_its_rename_is_explained() -> None:
    for path in DOCS:
        for line in path.read_text().splitlines():
            if "drift_vs_pytorch" in line:
                assert "renamed" in line or "called" in line, (path.name, line)


# -- the README tour, run as written on the CPU (smaller model and counts) -----------------------------------

#: What the tour's commands cost here is the model and the counts, not what they show: r18 at width 16 instead of
#: r50, a few crops, one timed call. Each replacement must apply (the tour changing is a test failure, not a silent
#: skip).
TOUR_SHRINK = {
    "make-model --arch r50 --out": "make-model --arch r18 --width 16 --out",
    "--n-samples 100": "--n-samples 6",
    "--precisions fp32,fp16,int8": "--precisions fp32,fp16,int8 --n-samples 6",
    "--batch-sizes 1,8,32": "--batch-sizes 2 --iterations 1 --warmup 0",
    "--precisions fp32,int8 --batch-sizes 32": "--precisions fp32,int8 --batch-sizes 2 --iterations 1 --warmup 0",
    "diagnose --json": "diagnose --json --onnx-path models/arcface_r50.onnx --n-samples 3 --iterations 1",
}


def _tour() -> list[list[str]]:
    block = FENCE.findall(_section((REPO / "README.md").read_text(), "## A 5-minute tour"))[0]
    for old, new in TOUR_SHRINK.items():
        assert old in block, f"the README tour no longer holds {old!r}"
        block = block.replace(old, new)
    return _block_calls(block)


@pytest.mark.slow
def test_the_readme_tour_runs_on_the_cpu_and_shows_what_it_claims(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    outputs = {}
    for index, (name, *args) in enumerate(_tour()):
        proc = run_cli(name, *args, cwd=tmp_path, env={"COLUMNS": "120"}, timeout=900)
        # a parity gate may fail on the random-weight model (exit 1); bad input or a crash may not
        assert proc.returncode in (0, 1), (name, args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, (name, args)
        outputs[index] = (name, args, proc)
    by_args = {" ".join([name, *args]): proc for name, args, proc in outputs.values()}

    def run(*words: str):
        return next(proc for line, proc in by_args.items() if all(w in line for w in words))

    # compare: the precision beside each backend, speeds measured warmed and interleaved, drift below float
    # precision shown as 0 only when it is
    single = " ".join(run("compare", "--n-samples 6").stdout.split())
    assert "Parity: onnxruntime fp32 vs insightface fp32" in single
    assert "warm-up excluded" in single and "interleaved" in single
    drift = " ".join(run("compare", "--precisions").stdout.split())
    assert "interleaved" in drift and "speed: img/s over the reference's" in drift
    # benchmark: each backend's own memory, the precision in the table, the chart written
    report = json.loads((tmp_path / "bench.json").read_text())
    ref, ort = report["results"]
    assert ref["memory"]["rss_added_mb"] != ort["memory"]["rss_added_mb"]
    assert "insightface (fp32)" in run("benchmark", "--plot").stdout and (tmp_path / "bench.png").stat().st_size
    both = " ".join(run("benchmark", "--precisions").stdout.split())
    assert "onnxruntime (fp32)" in both and "onnxruntime (int8)" in both and "xfp32" in both
    # diagnose: "the reference itself" exactly when the configured backend is the reference (CPU only here)
    record = json.loads(run("diagnose").stdout)
    assert ("note" in record["validation"]) == (record["backend"] == "insightface"), record["backend"]
    assert 0.99 < record["validation"]["worst_cosine"] <= 1.0
    # the dry run prints its precision plan in words
    dry = run("build", "--dry-run").stdout
    assert "precision plan:" in dry and "{" not in dry
