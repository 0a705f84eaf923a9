"""Helpers shared by the test folders (no tests here).

- ``paths``: ``REPO``, ``PACKAGE`` and where the recorded TensorRT APIs are.
- ``cli``: the CLI in-process (``invoke``) or as a real process (``run_cli``, ``run_python``, ``start_cli``).
- ``tiny_models``: tiny ONNX models, recognition-shaped or deliberately not (``write_tiny_model``).
- ``embeddings``: face crops as image files and the reference embeddings results are compared with.
- ``manifests``: engine manifests of other GPUs / TensorRT versions.
- ``faketrt``, ``fakecuda`` (packages, one module per concept), ``fakes``: the strict fake TensorRT and
  asynchronous fake cuda-python; ``trt_fixtures``: the fixtures installing them (``fake_stack``,
  ``no_gpu_stack``, ...), registered by ``tests/conftest.py``.
- ``tensorrt_api`` and ``tensorrt-api/``: the recorded real TensorRT APIs and header enum values (vendored)
  the fakes and the package are checked against.
- ``s3_server``: a moto S3 server process and a TCP proxy that cuts or stalls responses.
- ``triton``: Triton's model-config schema (``parse_config``) and a gRPC stand-in serving ONNX model folders.
"""
