"""``arcface-trt make-pairs``: write the toy verification pair set (an InsightFace ``.bin``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, status


def make_pairs(
    out: Annotated[Path, typer.Option("--out", help="Where to write the .bin pair set.")],
    n_pairs: Annotated[
        int, typer.Option("--n-pairs", help="Pairs to write, alternately same and different person.")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the augmentations and the pairing.")] = 0,
    image_format: Annotated[
        str, typer.Option("--image-format", help="How the crops are encoded in the file: jpg | png.")
    ] = "jpg",
    json_output: common.JsonOption = False,
) -> None:
    """Write a TOY pair set for compare --pairs: seeded augmentations of the seven real faces in the insightface wheel.

    Same-person pairs are two augmentations of one face, different-person pairs two faces. Far easier
    than LFW, CFP-FP or AgeDB-30 (see docs/parity.md for where those come from).
    """
    from arcface_trt.verification.demo import write_demo_pairs

    status(f"writing {n_pairs} pairs ...", enabled=not json_output)
    record = write_demo_pairs(out, n_pairs, seed, image_format)
    if json_output:
        emit_json(record.to_dict())
    else:
        typer.echo(
            f"wrote {record.path} ({record.bytes / 1e6:.1f} MB): {record.pairs} pairs ({record.same_pairs} same, "
            f"{record.different_pairs} different) of {record.distinct_images} {image_format} crops of "
            f"{record.identities} faces; a toy set, not a benchmark"
        )
