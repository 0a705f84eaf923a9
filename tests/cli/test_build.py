"""``arcface-trt build``: dry run without GPU/TensorRT, the one-line error, builds with the fake stack."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.support.cli import invoke, run_cli
from tests.support.fakes import FakeStack


def test_dry_run_json_without_gpu_or_tensorrt(no_gpu_stack, tiny_onnx: Path, tmp_path: Path) -> None:
    args = [
        "build",
        "--onnx-path",
        str(tiny_onnx),
        "--precision",
        "fp16",
        "--arch",
        "90",
        "--dry-run",
        "--json",
        "--cache-dir",
        str(tmp_path / "engines"),
    ]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["engine_name"] == "tiny-fp16-sm90.plan"
    assert plan["folder"] == "trt<major>.<minor>" and plan["trt_version"] is None
    assert any("TensorRT is not installed" in n for n in plan["notes"])
    assert plan["plan_path"] == str(tmp_path / "engines" / "trt<major>.<minor>" / "tiny-fp16-sm90.plan")
    manifest = plan["manifest"]
    for field in (
        "model",
        "precision",
        "sm_arch",
        "trt_version",
        "onnx_sha256",
        "min_batch",
        "opt_batch",
        "max_batch",
        "workspace_mb",
        "hardware_compatibility",
        "gpu_name",
        "tool_version",
    ):
        assert field in manifest
    assert manifest["sm_arch"] == "sm90" and manifest["precision"] == "fp16" and len(manifest["onnx_sha256"]) == 64
    assert plan["build_settings"]["opt_batch"] == 32  # the config default: the serving batch, not 1
    assert plan["build_settings"]["precision_check"].startswith("at least 80% of the convolution/matrix layers")
    assert not (tmp_path / "engines").exists()  # a dry run writes nothing


def test_dry_run_human_readable(no_gpu_stack, tiny_onnx: Path) -> None:
    result = invoke("build", "--onnx-path", str(tiny_onnx), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "engine:    tiny-fp16-sm<arch>.plan" in result.stdout
    assert "pass --arch" in result.stdout
    # the precision plan in words, one line per TensorRT version, never a raw dict
    assert "  TensorRT 10.x: fp16-builder-flag (transform none; flags set FP16; weakly typed)" in result.stdout
    assert "  TensorRT 11.x: fp16-mixed-precision-onnx (transform fp16-mixed-precision; strongly typed" in result.stdout
    assert "{" not in result.stdout and "input spec: 112x112 RGB" in result.stdout


def test_build_without_tensorrt_is_one_line_exit_2(no_gpu_stack, tiny_onnx: Path) -> None:
    result = invoke("build", "--onnx-path", str(tiny_onnx))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: cannot build or run a TensorRT engine here: Python module 'tensorrt' is not importable"
    )
    assert "pip install 'arcface-trt[gpu]'" in lines[0] and "cuda-python is not installed" in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--min-batch", "8", "--max-batch", "4"], "min_batch_size <= opt_batch_size <= max_batch_size"),
        (["--precision", "fp64"], "must be one of fp32, fp16, int8"),
        (["--hardware-compatibility", "turing"], "must be one of none, ampere_plus, same_cc"),
        (["--arch", "ninety", "--dry-run"], "not a GPU compute capability"),
    ],
)
def test_bad_options_are_one_line(no_gpu_stack, tiny_onnx: Path, args: list[str], needle: str) -> None:
    result = invoke("build", "--onnx-path", str(tiny_onnx), *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_build_and_reuse_with_fake(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    base = [
        "build",
        "--onnx-path",
        str(tiny_onnx),
        "--precision",
        "fp16",
        "--opt-batch",
        "4",
        "--max-batch",
        "8",
        "--cache-dir",
        str(tmp_path / "engines"),
    ]
    first = invoke(*base)
    assert first.exit_code == 0, first.output
    plan = tmp_path / "engines" / f"trt{fake_stack.major_minor}" / "tiny-fp16-sm90.plan"
    assert f"engine:     {plan}" in first.stdout and "from cache: no" in first.stdout
    # the reason is printed with the result (progress lines on stderr show only at a terminal)
    assert "rebuilt because: no cached plan" in first.stdout
    second = invoke(*base, "--json")
    record = json.loads(second.stdout)
    assert record["from_cache"] is True and record["source"] == "cache" and record["plan_bytes"] == plan.stat().st_size
    assert record["manifest"]["max_batch"] == 8 and record["manifest"]["opt_batch"] == 4
    third = invoke(*base, "--max-batch", "16", "--json")
    record = json.loads(third.stdout)
    assert record["from_cache"] is False and record["rebuild_reasons"] == ["max_batch: cached 8, wanted 16"]
    assert record["build_seconds"] > 0


def test_upload_calls_the_store(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    from arcface_trt.store import engines as store

    pushed = []

    def fake_push(settings, plan_path, overwrite=False):
        pushed.append((plan_path.name, overwrite))
        return {"plan": f"s3://bucket/{plan_path.name}"}

    monkeypatch.setattr(store, "push_plan", fake_push)
    result = invoke(
        "build",
        "--onnx-path",
        str(tiny_onnx),
        "--precision",
        "fp32",
        "--cache-dir",
        str(tmp_path / "e"),
        "--upload",
        "--overwrite",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert pushed == [("tiny-fp32-sm90.plan", True)]
    assert json.loads(result.stdout)["upload"] == {"plan": "s3://bucket/tiny-fp32-sm90.plan"}


def test_real_process_dry_run_and_missing_tensorrt(tiny_onnx: Path, tmp_path: Path) -> None:
    args = [
        "build",
        "--onnx-path",
        str(tiny_onnx),
        "--precision",
        "fp16",
        "--arch",
        "90",
        "--dry-run",
        "--json",
        "--cache-dir",
        str(tmp_path),
    ]
    ok = run_cli(*args, timeout=120)
    assert ok.returncode == 0, ok.stderr
    plan = json.loads(ok.stdout)
    assert plan["engine_name"] == "tiny-fp16-sm90.plan"
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: the missing-TensorRT path cannot be shown in a real process")
    assert plan["folder"] == "trt<major>.<minor>"
    missing = run_cli("build", "--onnx-path", str(tiny_onnx), "--cache-dir", str(tmp_path), timeout=120)
    assert missing.returncode == 2
    assert missing.stdout == ""
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "Python module 'tensorrt' is not importable" in lines[0]
    assert "Traceback" not in missing.stderr


# -- --target cpu --precision int8: calibration input ------------------------------------------------------------


def test_empty_calibration_folder_is_one_line_exit_2(r18_model: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["build", "--target", "cpu", "--precision", "int8", "--onnx-path", str(r18_model)]
    result = invoke(*args, "--calib-images", str(empty))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: calibration images: no images")


def test_unreadable_calibration_folder_is_one_line_exit_2_subprocess(r18_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "face.jpg").write_bytes(b"\x00" * 64)
    (folder / "face2.png").write_text("not a png")
    args = ["build", "--target", "cpu", "--precision", "int8", "--onnx-path", str(r18_model)]
    proc = run_cli(*args, "--calib-images", str(folder), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: calibration images: none of the 2 files in {folder} is a readable image"
    ]
    assert proc.stdout == ""


@pytest.mark.parametrize("stem", ["a b", "ok\n", "[bad]", ".hidden", "x\x1b[31m"])
def test_an_onnx_file_name_that_cannot_name_an_engine_is_refused(
    stem: str, no_gpu_stack, tiny_onnx: Path, tmp_path: Path
) -> None:
    """The CPU target and the dry run derive names through the key's rule, like a real build."""
    model = tmp_path / "models" / f"{stem}.onnx"
    model.parent.mkdir()
    model.write_bytes(tiny_onnx.read_bytes())
    cache = tmp_path / "engines"
    for target in (["--target", "cpu"], ["--arch", "90", "--dry-run"], ["--arch", "90", "--dry-run", "--json"]):
        result = invoke("build", "--onnx-path", model, "--precision", "fp32", "--cache-dir", cache, *target)
        assert result.exit_code == 2, (target, result.output)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: model name ") and "\x1b" not in line and result.stdout == ""
    assert not cache.exists()


# -- build progress, the precision gate -------------------------------------------------------------------------


class _RecordingBars:
    """A rich Progress on a terminal-like buffer that also keeps what the display asked of it."""

    def __init__(self) -> None:
        import io

        from rich.console import Console

        from arcface_trt.cli.common import _bars

        self.out = io.StringIO()
        self.bars = _bars(Console(file=self.out, force_terminal=True, width=120))
        self.added: list[tuple[str, float]] = []
        self.completed: dict[str, int] = {}
        self.removed: list[str] = []

    def add_task(self, description: str, total: float) -> int:
        self.added.append((description, total))
        return self.bars.add_task(description, total=total)

    def _name(self, task: int) -> str:
        return next(t.description for t in self.bars.tasks if t.id == task)

    def update(self, task: int, completed: int) -> None:
        self.completed[self._name(task)] = completed
        self.bars.update(task, completed=completed)

    def remove_task(self, task: int) -> None:
        self.removed.append(self._name(task))
        self.bars.remove_task(task)


def test_progress_events_reach_the_display(fake_stack: FakeStack, tiny_onnx: Path, engine_settings) -> None:
    from arcface_trt.cli.common import PhaseDisplay
    from arcface_trt.engine.build import BuildRequest, build_engine

    recorder = _RecordingBars()
    build_engine(BuildRequest(tiny_onnx, engine_settings), on_progress=PhaseDisplay(recorder))
    labels = [label for label, _ in recorder.added]
    assert labels[:4] == [
        "Building engine",
        "  Building engine from subgraph",
        "    Computing profile costs",
        "      Timing graph nodes",
    ]
    assert "        Finding fastest tactic for conv + relu" in labels
    assert recorder.completed["Building engine"] == 4 and recorder.completed["      Timing graph nodes"] == 3
    assert sorted(recorder.removed) == sorted(labels) and not recorder.bars.tasks  # every phase closed


def test_phase_names_are_text_not_markup() -> None:
    from arcface_trt.cli.common import PhaseDisplay
    from arcface_trt.engine.progress import START, PhaseEvent

    recorder = _RecordingBars()
    with recorder.bars:
        PhaseDisplay(recorder)(PhaseEvent(START, "Finding fastest tactic for [bold]/conv[/bold] + [Shuffle]", None, 2))
        recorder.bars.refresh()
    assert "[bold]/conv[/bold] + [Shuffle]" in recorder.out.getvalue()


def test_build_shows_progress_only_at_a_terminal(
    fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path, monkeypatch
) -> None:
    from contextlib import contextmanager

    from arcface_trt.cli import build as build_cli
    from arcface_trt.cli.common import build_progress

    with build_progress(enabled=True) as on_progress:
        assert on_progress is None  # the test's stderr is not a terminal
    seen: list[tuple[bool, int]] = []

    @contextmanager
    def terminal(enabled: bool = True):
        events: list = []
        yield events.append if enabled else None
        seen.append((enabled, len(events)))

    monkeypatch.setattr(build_cli, "build_progress", terminal)
    args = ["build", "--onnx-path", tiny_onnx, "--precision", "fp32", "--cache-dir", tmp_path / "e"]
    shown = invoke(*args)
    assert shown.exit_code == 0 and seen[-1][0] and seen[-1][1] > 10
    assert "precision:  2 of 2 convolution/matrix layers run in fp32; layers: 3 fp32" in shown.stdout
    assert "timing cache: new (3 entries added)" in shown.stdout
    quiet = invoke(*args, "--force", "--json")
    assert quiet.exit_code == 0 and seen[-1] == (False, 0)
    record = json.loads(quiet.stdout)  # stdout holds only the JSON
    assert record["manifest"]["precision_check"]["passed"] and record["manifest"]["extra"]["timing_cache"] == "loaded"


def test_a_mislabelled_build_exits_1_and_is_neither_cached_nor_uploaded(
    fake_stack_10: FakeStack, tiny_onnx: Path, tmp_path: Path, monkeypatch
) -> None:
    from arcface_trt.store import engines as store

    monkeypatch.setattr(store, "push_plan", lambda *a, **k: pytest.fail("a mislabelled plan must not be uploaded"))
    fake_stack_10.fp32_tactics.add("conv")
    args = ["build", "--onnx-path", tiny_onnx, "--precision", "fp16", "--cache-dir", tmp_path / "e", "--upload"]
    result = invoke(*args, "--json")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the engine labelled fp16 is not fp16: 1 of 2 convolution")
    assert not [p for p in (tmp_path / "e").rglob("*") if p.suffix in (".plan", ".json")]


# -- plans that travel: names, manifests, the refused combination ------------------------------------------------


def _dry_run(onnx: Path, *options: str) -> dict:
    result = invoke("build", "--onnx-path", str(onnx), "--dry-run", "--json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dry_run_names_plans_that_travel(no_gpu_stack, tiny_onnx: Path) -> None:
    portable = _dry_run(tiny_onnx, "--hardware-compatibility", "ampere_plus")
    # sm80+ names every Ampere-or-newer GPU: no --arch needed to name it.
    assert portable["engine_name"] == "tiny-fp16-sm80+.plan"
    assert (
        portable["manifest"]["sm_arch"] == "sm80+" and portable["manifest"]["hardware_compatibility"] == "ampere_plus"
    )
    assert any("loads on every GPU of compute capability 8.0+" in note for note in portable["notes"])
    assert (
        _dry_run(tiny_onnx, "--hardware-compatibility", "same_cc", "--arch", "86")["engine_name"]
        == "tiny-fp16-sm86.plan"
    )

    stripped = _dry_run(tiny_onnx, "--strip-weights", "--arch", "90")
    assert stripped["engine_name"].startswith("tiny-fp16-stripped-") and stripped["engine_name"].endswith("-sm90.plan")
    assert stripped["manifest"]["weights"] == "stripped"
    assert stripped["build_settings"]["portability"]["set_flags"] == ["STRIP_PLAN", "REFIT_IDENTICAL"]
    assert any("smaller, not weightless" in note for note in stripped["notes"])

    portable_version = _dry_run(tiny_onnx, "--version-compatible", "--arch", "90")
    assert portable_version["engine_name"].startswith("tiny-fp16-vercompat-")
    manifest = portable_version["manifest"]
    assert manifest["version_compatible"] is True and manifest["lean_runtime"] == "embedded"
    no_lean = _dry_run(tiny_onnx, "--version-compatible", "--exclude-lean-runtime", "--arch", "90")
    assert (
        no_lean["engine_name"].startswith("tiny-fp16-nolean-vercompat-")
        and no_lean["manifest"]["lean_runtime"] == "excluded"
    )
    assert any("Runtime.load_runtime" in note for note in no_lean["notes"])


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--strip-weights", "--version-compatible"], "cannot be combined with tensorrt.version_compatible"),
        (["--exclude-lean-runtime"], "applies to version-compatible plans only"),
    ],
)
def test_options_that_cannot_combine_are_one_line_exit_2(
    no_gpu_stack, tiny_onnx: Path, options: list[str], needle: str
) -> None:
    for dry in ([], ["--dry-run"]):
        result = invoke("build", "--onnx-path", str(tiny_onnx), *options, *dry)
        assert result.exit_code == 2 and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: command line: ") and needle in lines[0], result.stderr


def test_the_refused_combination_in_a_real_process(tiny_onnx: Path, tmp_path: Path) -> None:
    result = run_cli("build", "--onnx-path", tiny_onnx, "--strip-weights", "--version-compatible", "--dry-run",
                     "--cache-dir", tmp_path, timeout=120)  # fmt: skip
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "--strip-weights" in line and "--version-compatible" in line and "lean runtime" in line


def test_build_says_where_the_plan_travels(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    base = ["build", "--onnx-path", str(tiny_onnx), "--precision", "fp32", "--cache-dir", str(tmp_path / "e")]
    stripped = invoke(*base, "--strip-weights")
    assert stripped.exit_code == 0, stripped.output
    assert "travels:    weights stripped (refit at load from the ONNX); hardware none; this TensorRT version only" in (
        stripped.stdout
    )
    record = json.loads(invoke(*base, "--strip-weights", "--json").stdout)
    assert record["from_cache"] and record["manifest"]["weights"] == "stripped" and record["match"] == "exact"
    portable = invoke(*base, "--version-compatible", "--hardware-compatibility", "ampere_plus")
    assert portable.exit_code == 0, portable.output
    assert "tiny-fp32-vercompat-" in portable.stdout and "-sm80+.plan" in portable.stdout
    assert "hardware ampere_plus (sm80+); version-compatible (lean runtime embedded)" in portable.stdout
