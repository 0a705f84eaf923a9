"""Fixtures of the S3 tests, for every test folder: one real moto S3 server per session, isolated AWS settings.

``tests/conftest.py`` registers this module through ``pytest_plugins``. ``aws_env`` is not
autouse here: a folder whose every test talks to S3 makes it autouse in its own conftest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, MotoServer

#: AWS variables that could leak the developer's own settings into a test.
AWS_VARS = (
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


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake credentials from the environment only: empty AWS config files, no instance metadata."""
    for name in AWS_VARS:
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
