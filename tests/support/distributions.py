"""Installed-looking distributions for tests that read package metadata (``importlib.metadata``)."""

from __future__ import annotations

from pathlib import Path


def install_distribution(site: Path, name: str, version: str, files: dict[str, str] | None = None) -> None:
    """Write ``<name>-<version>.dist-info/METADATA`` into ``site`` and ``files`` (relative path -> text) beside it,
    as pip leaves a wheel; put ``site`` first on ``sys.path`` to make it visible."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for relative, text in (files or {}).items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
