"""Running the ``arcface-trt`` CLI from tests: in-process (:func:`invoke`) or as a real process (:func:`run_cli`).

Real processes run ``sys.executable`` with this checkout first on ``PYTHONPATH``, so the
``arcface_trt`` under test is the one imported whatever the working folder is (``cwd``,
``REPO`` unless given). They get the test's environment (``os.environ`` at call time, so
``ARCFACE_TRT_CACHE_DIR`` from the session's isolated cache and anything ``monkeypatch``
set) updated by ``env``, where a ``None`` value removes the variable. Stdin is empty.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.paths import REPO

EnvChanges = Mapping[str, str | None]


def invoke(*args: object, env: Mapping[str, str] | None = None):
    """``arcface-trt ARGS`` in-process through Typer's ``CliRunner`` (stdout and stderr kept apart)."""
    from typer.testing import CliRunner

    from arcface_trt.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def process_env(env: EnvChanges | None = None) -> dict[str, str]:
    """The environment of a real process: ``os.environ``, ``REPO`` first on ``PYTHONPATH``, then ``env``."""
    merged = dict(os.environ)
    merged["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), merged.get("PYTHONPATH")) if p)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def run_python(
    *argv: object,
    cwd: Path = REPO,
    env: EnvChanges | None = None,
    timeout: float = 300,
    check: bool = False,
) -> subprocess.CompletedProcess:
    """``python ARGV`` as a real process (``-c CODE``, a script, ``-m MODULE``); text output captured."""
    return subprocess.run(
        [sys.executable, *(str(a) for a in argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=process_env(env),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=check,
    )


def run_cli(
    *args: object, cwd: Path = REPO, env: EnvChanges | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m arcface_trt ARGS`` as a real process, waited for (see :func:`run_python`)."""
    return run_python("-m", "arcface_trt", *args, cwd=cwd, env=env, timeout=timeout)


def start_cli(
    *args: object, cwd: Path = REPO, env: EnvChanges | None = None, stderr_file: Path | None = None
) -> subprocess.Popen:
    """``python -m arcface_trt ARGS`` started in the background (text pipes for stdout and stderr).

    ``stderr_file``: stderr goes to this file instead (a chatty process polled for a long time
    would otherwise block on a full pipe).
    """
    return subprocess.Popen(
        [sys.executable, "-m", "arcface_trt", *(str(a) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr_file is None else stderr_file.open("w"),
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env=process_env(env),
    )


#: Run by :func:`run_cli_measured`: the CLI as the only child of a fresh Python, which then reports its peak RSS.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run([sys.executable, '-m', 'arcface_trt', *sys.argv[1:]], stdin=subprocess.DEVNULL).returncode\n"
    "print(f'PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_cli_measured(
    *args: object, cwd: Path = REPO, env: EnvChanges | None = None, timeout: float = 300
) -> tuple[subprocess.CompletedProcess, float]:
    """:func:`run_cli` and the command's peak resident memory in MB (``getrusage`` of a fresh parent's only child)."""
    result = run_python("-c", _MEASURE, *args, cwd=cwd, env=env, timeout=timeout)
    stderr, _, peak = result.stderr.rpartition("PEAK_RSS_KB=")
    result.stderr = stderr
    return result, int(peak.strip()) / 1024
