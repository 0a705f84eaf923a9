"""Config files from wherever a user points the tool: devices, pipes, binary files, alias bombs, deep nesting.

Each ends in one ``error:`` line with exit 2, in bounded time and memory; the values a message
shows are shortened.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.support.cli import invoke, run_cli, run_cli_measured

MAX_RSS_MB = 300

LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "embedding:",
        "  backend: *i",  # 9**9 "lol"s if expanded
    ]
)


def _one_error_line(stderr: str, *needles: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_dev_zero_as_the_config_is_refused_without_reading(tmp_path: Path) -> None:
    result, peak_mb = run_cli_measured("list-engines", "--bucket", "b", env={"ARCFACE_TRT_CONFIG": "/dev/zero"})
    assert result.returncode == 2
    _one_error_line(result.stderr, "config file /dev/zero is not a regular file")
    assert peak_mb < MAX_RSS_MB, peak_mb


def test_a_fifo_config_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    by_env = run_cli("list-engines", "--bucket", "b", env={"ARCFACE_TRT_CONFIG": str(fifo)}, timeout=60)
    assert by_env.returncode == 2
    _one_error_line(by_env.stderr, "is not a regular file")
    # the TensorRT config an embedding.yaml points to is read the same way
    embedding = tmp_path / "embedding.yaml"
    embedding.write_text(yaml.safe_dump({"embedding": {"tensorrt_config": str(fifo)}}))
    by_reference = run_cli("list-engines", "--bucket", "b", "--config", embedding, timeout=60)
    assert by_reference.returncode == 2
    _one_error_line(by_reference.stderr, str(fifo), "is not a regular file")


def test_alias_bomb_is_refused_while_parsing(tmp_path: Path) -> None:
    config = tmp_path / "laughs.yaml"
    config.write_text(LAUGHS)
    result, peak_mb = run_cli_measured("list-engines", "--bucket", "b", "--config", config)
    assert result.returncode == 2
    _one_error_line(result.stderr, "expands to more than 100,000 values")
    assert peak_mb < MAX_RSS_MB, peak_mb


def test_a_small_alias_bomb_in_a_wrong_value_shows_a_short_message(tmp_path: Path) -> None:
    """Within the value bound (9**4 strings), a wrong value is shown shortened, never expanded in full."""
    levels = ["&a [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"&{name} [{', '.join([f'*{prev}'] * 9)}]" for prev, name in zip("abc", "bcd", strict=True)]
    config = tmp_path / "small.yaml"
    config.write_text(f"embedding:\n  model_path: [{', '.join(levels)}]\n")
    result = invoke("list-engines", "--bucket", "b", "--config", config)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.stderr, "'embedding.model_path' must be str | None, got [['lol', 'lol'")
    assert len(line) < 300, line


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 text file (byte 0x89 at offset 0)"),
        (b"embedding:\n  backend: " + b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32 levels"),
        (b"# padding\n" * 200_000, "is larger than 1,048,576 bytes"),
        (b"embedding:\n  backend: " + b"x" * 500_000, "got 'xxxxxxx"),
        (b"embedding:\n  ? " + b"k" * 500_000 + b"\n  : 1", "unknown key 'embedding.kkkk"),
        (b"embedding: [1, 2]\0", "not valid YAML"),
    ],
    ids=["binary", "deep", "oversized", "long value", "long key", "NUL byte"],
)
def test_hostile_config_file_is_one_short_line(content: bytes, needle: str, tmp_path: Path) -> None:
    config = tmp_path / "embedding.yaml"
    config.write_bytes(content)
    result = invoke("list-engines", "--bucket", "b", "--config", config)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.stderr, needle)
    assert len(line) < 400, line


def test_a_folder_as_the_config(tmp_path: Path) -> None:
    result = invoke("list-engines", "--bucket", "b", "--config", tmp_path)
    assert result.exit_code == 2
    _one_error_line(result.stderr, f"config file {tmp_path} is a folder")
