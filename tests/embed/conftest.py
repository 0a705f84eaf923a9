"""Fixtures shared by the embed tests: a loaded r18 embedder and a small folder of crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.embeddings import reference, write_crops


@pytest.fixture(scope="module")
def embedder(r18_model: Path):
    """One loaded r18 ONNX Runtime embedder (batch 4) shared by a module's tests."""
    return reference(r18_model, batch_size=4)


@pytest.fixture()
def crop_folder(tmp_path: Path, faces: np.ndarray) -> Path:
    """Six PNG crops in two sub-folders."""
    write_crops(tmp_path / "crops", faces[:6])
    return tmp_path / "crops"
