"""The CLI frame: --debug, --version, no arguments, and every --help without the heavy modules."""

from __future__ import annotations

import itertools
import json

from tests.support.cli import run_cli, run_python


def test_debug_shows_the_traceback_and_keeps_the_exit_code() -> None:
    result = run_cli("--debug", "compare", "--onnx-path", "/nonexistent/m.onnx")
    # bad input is exit 2 with or without --debug; --debug adds the traceback
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert run_cli("compare", "--onnx-path", "/nonexistent/m.onnx").returncode == 2


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        heavy = {'tensorrt', 'cuda', 'onnxruntime', 'insightface', 'boto3', 'cv2', 'onnx', 'ray', 'pyarrow'}
        if name.split('.')[0] in heavy | {'matplotlib', 'onnxconverter_common'}:
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
from arcface_trt.cli.app import app
import typer.main
group = typer.main.get_command(app)
names = sorted(group.commands)
for name in [None, *names]:
    try:
        app([name, '--help'] if name else ['--help'], prog_name='arcface-trt')
    except SystemExit as exc:
        assert exc.code == 0, (name, exc.code)
print('COMMANDS', ' '.join(names))
"""


def test_every_help_works_without_heavy_modules() -> None:
    result = run_python("-c", BLOCKER, timeout=120)
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("COMMANDS")[-1].split()
    assert {"compare", "make-model"} <= set(commands)


def test_version_and_no_args() -> None:
    env = {"COLUMNS": "120"}
    version = run_cli("--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("arcface-trt ")
    bare = run_cli(env=env)
    assert "compare" in bare.stdout + bare.stderr


def test_the_command_line_starts_without_the_library() -> None:
    """Commands import their work inside the command (Optimum style): --help loads no library module, no numpy."""
    code = (
        "import sys, arcface_trt.cli.app; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('arcface_trt', 'numpy', 'yaml')))))"
    )
    result = run_python("-c", code, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    light = {
        "arcface_trt",
        "arcface_trt.errors",
        "arcface_trt.names",
        "arcface_trt.paths",
        "arcface_trt.redact",
        "arcface_trt.version",
    }
    assert {m for m in loaded if not m.startswith("arcface_trt.cli")} <= light


def test_stdout_to_stderr_catches_python_c_and_child_process_output() -> None:
    """What Ray prints on stdout (from Python, from C, from processes it starts) cannot mix into a JSON document."""
    code = (
        "import os, subprocess, sys\n"
        "from arcface_trt.cli.common import emit_json, stdout_to_stderr\n"
        "with stdout_to_stderr():\n"
        "    print('python noise')\n"
        "    os.write(1, b'fd noise\\n')\n"
        "    subprocess.run([sys.executable, '-c', 'print(\"child noise\")'], check=True)\n"
        "emit_json({'ok': True})\n"
    )
    result = run_python("-c", code, check=True)
    assert json.loads(result.stdout) == {"ok": True}
    assert result.stderr.splitlines() == ["python noise", "fd noise", "child noise"]


def test_every_help_reads_whole_at_80_columns() -> None:
    """Choices wrap instead of being cut (``pytorch|insightface|o…``); flags show no ``<bool>`` to fill in."""
    import typer.main

    from arcface_trt.cli.app import app
    from tests.support.cli import invoke

    names = sorted(typer.main.get_command(app).commands)
    for args in ([], *([name] for name in names)):
        result = invoke(*args, "--help", env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
        assert result.exit_code == 0, (args, result.output)
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, args
        assert "…" not in result.stdout, (args, [line for line in lines if "…" in line])
        assert "<bool>" not in result.stdout, args
        assert "--help" in result.stdout and ("--json" in result.stdout or args != ["compare"])
        assert not _ragged(lines), (args, _ragged(lines))


def _ragged(lines: list[str]) -> list[str]:
    """Description lines (above the option boxes) broken early: the next line's first word would have fitted."""
    usage = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Usage:"))
    description = []
    for line in lines[usage + 1 :]:
        if line.lstrip().startswith("╭"):
            break
        description.append(line.strip())
    return [
        line
        for line, after in itertools.pairwise(description)
        if line and after and len(line) + 1 + len(after.split()[0]) <= 76
    ]


def test_reflowed_joins_lines_and_keeps_paragraphs() -> None:
    from arcface_trt.cli.app import reflowed

    text = "First line\n    goes on.\n\n    Second\n    paragraph."
    assert reflowed(text) == "First line goes on.\n\nSecond paragraph."
    assert reflowed(None) is None
