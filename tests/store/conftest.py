"""Fixtures of the S3 store tests (the moto server and the AWS settings come from tests/support/s3_fixtures.py)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from arcface_trt.artifacts.key import EngineKey, Variant
from arcface_trt.artifacts.portability import Portability
from tests.support.manifests import plan_manifest, sha256_of
from tests.support.s3_server import CuttingProxy, MotoServer


@pytest.fixture(autouse=True)
def aws_env(aws_env: dict[str, str]) -> dict[str, str]:
    """Every store test runs with the isolated fake credentials (tests/support/s3_fixtures.py)."""
    return aws_env


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[CuttingProxy]:
    """A TCP proxy in front of moto (passes everything through until a test tells it otherwise)."""
    front = CuttingProxy(moto_server.port)
    yield front
    front.close()


@dataclass
class PlanFiles:
    """A plan and its manifest on disk, laid out like the engine cache."""

    key: EngineKey
    plan: Path
    manifest: Path
    content: bytes

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest.read_bytes()


@pytest.fixture
def make_plan(tmp_path: Path):
    """Write ``{root}/trt{v}/{model}-{precision}[-{tags}-{recipe8}]-sm{arch}.plan`` with arbitrary bytes and a valid
    manifest (whose option fields say what the recipe's tags and the arch say)."""

    def make(
        model: str = "arcface_r18",
        precision: str = "fp16",
        arch: str = "90",
        trt_version: str = "10.16.1.11",
        size: int = 300_000,
        seed: int = 0,
        root: Path | None = None,
        recipe: dict | None = None,
    ) -> PlanFiles:
        key = EngineKey(model, precision, arch, trt_version, Variant.of(recipe or {}))
        # Arbitrary, seeded, incompressible bytes: the store never looks inside a plan.
        content = b"".join(hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(size // 32 + 1))[:size]
        folder = (root or tmp_path / f"built-{uuid.uuid4().hex[:6]}") / key.folder
        folder.mkdir(parents=True, exist_ok=True)
        plan = folder / key.name
        plan.write_bytes(content)
        manifest = plan_manifest(
            model,
            precision,
            key.sm_arch,
            trt_version,
            plan_sha256=sha256_of(content),
            plan_bytes=size,
            recipe=recipe or {},
            **Portability.of_key(key).manifest_fields(),
        )
        manifest_path = folder / key.manifest_name
        manifest_path.write_text(manifest.to_json())
        return PlanFiles(key, plan, manifest_path, content)

    return make
