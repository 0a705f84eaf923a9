"""Fixtures of the S3 store tests: one real moto S3 server per session, isolated AWS settings per test."""

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
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, CuttingProxy, MotoServer

#: AWS variables that could leak the developer's own settings into a test.
_AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto S3 server on a free port of 127.0.0.1 for the whole session."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.log")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake credentials from the environment only: empty AWS config files, no instance metadata."""
    for name in _AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    values = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def s3(moto_server: MotoServer, aws_env: dict[str, str]):
    """A plain boto3 client on the moto server (for arranging and inspecting the bucket)."""
    import boto3

    return boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket for this test."""
    name = f"engines-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


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
