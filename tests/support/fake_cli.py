"""``python -m tests.support.fake_cli ARGS``: the arcface-trt CLI in a real process on the fake TensorRT and an H100.

For scripts that run the CLI as a command (``scripts/gpu_smoke.sh`` takes it in ``$ARCFACE_TRT``).
``FAKE_TRT_MAJOR`` picks the fake's shape (``10``, the default, or ``11``).
"""

from __future__ import annotations

import os

import pytest

from tests.support.fakes import install_fakes

if __name__ == "__main__":
    install_fakes(pytest.MonkeyPatch(), os.environ.get("FAKE_TRT_MAJOR", "10"))
    from arcface_trt.cli.app import main

    main()
