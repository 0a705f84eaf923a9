"""The CLI reference is generated from the app, and the CI workflows run commands that exist."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import typer.main
import yaml

from arcface_trt.cli.app import app
from arcface_trt.diagnose.cuda_stack import CUDA_STACKS
from tests.support.cli import run_python
from tests.support.paths import REPO

WORKFLOWS = REPO / ".github" / "workflows"
CALL = re.compile(r"arcface-trt\s+([a-z][a-z-]*)([^\n|>&;]*)")


def _commands() -> dict[str, set[str]]:
    group = typer.main.get_command(app)
    return {
        name: {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
        for name, command in group.commands.items()
    }


def _runs(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text())
    return [step["run"] for job in data["jobs"].values() for step in job["steps"] if "run" in step]


def test_cli_reference_is_current() -> None:
    result = run_python(REPO / "scripts" / "gen_cli_docs.py", "--check")
    assert result.returncode == 0, result.stderr
    text = (REPO / "docs" / "cli.md").read_text()
    for name in _commands():
        assert f"## `arcface-trt {name}`" in text


def test_workflows_parse_and_call_existing_commands_and_options() -> None:
    commands = _commands()
    calls = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for script in _runs(path):
            for name, rest in CALL.findall(script):
                calls += 1
                assert name in commands, f"{path.name}: arcface-trt {name} is not a command"
                for option in re.findall(r"(--[a-z][a-z0-9-]*)", rest):
                    assert option in commands[name], f"{path.name}: arcface-trt {name} has no {option}"
    assert calls >= 4


def _steps(path: Path) -> list[dict]:
    data = yaml.safe_load(path.read_text())
    return [step for job in data["jobs"].values() for step in job["steps"]]


def test_parity_job_gates_on_a_tensorrt_comparison_that_cannot_pass_by_accident() -> None:
    data = yaml.safe_load((WORKFLOWS / "parity.yml").read_text())
    job = data["jobs"]["parity"]
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    steps = _steps(WORKFLOWS / "parity.yml")
    runs = [step.get("run", "") for step in steps]
    install = next(run for run in runs if "pip install" in run)
    # The gpu extra is the CUDA 12 stack: onnxruntime-gpu of CUDA 12 beside it, not whatever is newest.
    assert "pip install '.[gpu,dev]'" in install and f"pip install '{CUDA_STACKS[12].onnxruntime_gpu}'" in install
    compare = next(i for i, run in enumerate(runs) if re.search(r"arcface-trt compare .*--backend-b tensorrt", run))
    # No fallback, and the fp16 engine's own tolerance: no one-run override that would apply to every precision.
    assert "--no-cpu-fallback" in runs[compare] and "--max-drift-cosine" not in "\n".join(runs)
    assert re.search(r"--json --output parity-report.json > parity.json", runs[compare])
    assert "set +e" not in runs[compare] and "|| true" not in runs[compare]
    # After it: the report must show TensorRT really ran, judged by its precision's key; then the gpu-marked tests.
    check = next(i for i, run in enumerate(runs) if "scripts/check_tensorrt_report.py parity.json" in run)
    tests = next(i for i, run in enumerate(runs) if re.search(r"python -m pytest .*-m gpu", run))
    assert compare < check and compare < tests
    assert steps[check]["if"] == "always()" and steps[tests]["if"] == "always()"
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    reports = {"parity.json", "parity-report.json", "diagnose.json", "gpu-tests.xml"}
    assert upload["if"] == "always()" and reports <= set(upload["with"]["path"].split())


def test_gpu_smoke_script_gates_like_the_workflow() -> None:
    text = (REPO / "scripts" / "gpu_smoke.sh").read_text()
    assert "--max-drift-cosine" not in text and "MAX_DRIFT" not in text  # each precision's own key
    assert re.search(r"compare --backend-a insightface --backend-b tensorrt --no-cpu-fallback", text)
    assert '"$HERE/check_tensorrt_report.py" "$WORK/compare-$precision.json"' in text
    assert re.search(r'"\$PYTHON" -m pytest -q -m gpu ', text)
    assert "trap finish EXIT" in text and 'cp "$WORK"/*.json' in text  # reports kept, pass or fail


def test_cpu_workflow_runs_the_test_command() -> None:
    runs = _runs(WORKFLOWS / "ci.yml")
    assert any("bash .ci/run" in run for run in runs)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_gpu_smoke_script_is_valid_bash() -> None:
    script = REPO / "scripts" / "gpu_smoke.sh"
    assert os.access(script, os.X_OK)
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_gpu_smoke_script_calls_existing_commands_and_options() -> None:
    """Every ``"${CLI[@]}" COMMAND --option`` in the smoke script exists; it inspects each plan it builds."""
    text = (REPO / "scripts" / "gpu_smoke.sh").read_text().replace("\\\n", " ")
    commands = _commands()
    calls = re.findall(r'"\$\{CLI\[@\]\}" ([a-z][a-z-]*)([^\n]*)', text)
    assert {name for name, _ in calls} >= {"make-model", "build", "inspect", "compare", "benchmark"}
    for name, rest in calls:
        assert name in commands, f"gpu_smoke.sh: arcface-trt {name} is not a command"
        for option in re.findall(r"(--[a-z][a-z0-9-]*)", rest):
            assert option in commands[name], f"gpu_smoke.sh: arcface-trt {name} has no {option}"
    assert 'inspected.get("mislabelled") is not False' in text  # a mislabelled (or uninspected) plan fails the run
