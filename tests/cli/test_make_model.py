"""``arcface-trt make-model`` as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli


def test_make_model_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = run_cli("make-model", "--arch", "r18", "--out", str(out), "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["arch"] == "r18" and record["seed"] == 3 and out.stat().st_size == record["bytes"]
    assert record["width"] == 64
    bad = run_cli("make-model", "--arch", "r7", "--out", str(tmp_path / "x.onnx"))
    assert bad.returncode == 2 and "unknown architecture 'r7'" in bad.stderr
    assert not (tmp_path / "x.onnx").exists()
    bad_width = run_cli("make-model", "--arch", "r18", "--width", "0", "--out", str(tmp_path / "x.onnx"))
    assert bad_width.returncode == 2 and bad_width.stderr.strip() == "error: --width must be at least 1, got 0"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left behind
