"""``arcface-trt make-model``: write the built-in ArcFace-architecture ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, status
from arcface_trt.errors import InputError


def make_model(
    out: Annotated[Path, typer.Option("--out", help="Where to write the .onnx file.")],
    arch: Annotated[str, typer.Option("--arch", help="IResNet depth: r18 | r34 | r50 | r100.")] = "r50",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights (same seed, same model).")] = 0,
    width: Annotated[
        int,
        typer.Option("--width", help="Channels of the first stage, doubled by each later one (64; 8: a fast model)."),
    ] = 64,
    json_output: common.JsonOption = False,
) -> None:
    """Generate an ArcFace-architecture (InsightFace IResNet) ONNX model with RANDOM, seeded weights.

    For demos and tests only: the weights are not trained. Real work uses InsightFace's ONNX files.
    """
    from arcface_trt.fileio import sha256_file
    from arcface_trt.model.iresnet import write_model

    if out.exists() and out.is_dir():
        raise InputError(f"--out is a folder, give a file path: {out}")
    status(f"generating {arch} (seed {seed}, width {width}) ...", enabled=not json_output)
    write_model(out, arch, seed, width)
    record = {
        "path": str(out),
        "arch": arch,
        "seed": seed,
        "width": width,
        "bytes": out.stat().st_size,
        "sha256": sha256_file(out),
    }
    if json_output:
        emit_json(record)
    else:
        size = f"{record['bytes'] / 1e6:.1f} MB"
        typer.echo(f"wrote {out} ({size}, IResNet {arch}, width {width}, seed {seed}, random weights)")
