"""The engine-store commands in tests: their arguments, a seeded cache, and the one-line failure every test checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.s3_server import ACCESS_KEY, SECRET_KEY

MODEL = "arcface_r18"
PLAN_KEY = "engines/trt10.16/arcface_r18-fp16-sm90.plan"
MANIFEST_KEY = "engines/trt10.16/arcface_r18-fp16-sm90.json"


def store(url: str, bucket: str) -> list[str]:
    return ["--bucket", bucket, "--endpoint-url", url]


def fetch_args(cache: Path, *more: object) -> list[object]:
    return ["fetch-engine", "--model", MODEL, "--precision", "fp16", "--arch", "90", "--trt-version", "10.16",
            "--cache-dir", cache, *more]  # fmt: skip


def seeded_cache(tmp_path: Path, make_plan) -> Path:
    """A cache folder that already holds another engine (so "unchanged" is a real check)."""
    cache = tmp_path / "cache"
    make_plan(model="other", arch="86", trt_version="10.8", size=1000, root=cache)
    return cache


def assert_failed(result, *needles: str, secrets: tuple[str, ...] = (SECRET_KEY, ACCESS_KEY)) -> str:
    """Exit 2, exactly one stderr line starting with ``error:``, no traceback, no credential; returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output
    for secret in secrets:
        assert secret not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_config(folder: Path, **tensorrt: object) -> Path:
    """An embedding.yaml whose arcface_tensorrt.yaml holds ``tensorrt`` keys; returns the embedding.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    trt = folder / "arcface_tensorrt.yaml"
    trt.write_text(yaml.safe_dump({"tensorrt": tensorrt}))
    embedding = folder / "embedding.yaml"
    embedding.write_text(yaml.safe_dump({"embedding": {"tensorrt_config": str(trt)}}))
    return embedding
