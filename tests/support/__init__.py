"""Helpers shared by the test folders (no tests here).

- ``paths``: ``REPO``, ``PACKAGE`` and where the recorded TensorRT APIs are.
- ``cli``: the CLI in-process (``invoke``) or as a real process (``run_cli``, ``run_python``, ``start_cli``).
- ``tiny_models``: tiny ONNX models, recognition-shaped or deliberately not (``write_tiny_model``).
- ``embeddings``: face crops as image files and the reference embeddings results are compared with.
- ``manifests``: engine manifests of other GPUs / TensorRT versions.
- ``fake_trt``, ``fake_cuda``, ``fakes``: the strict fake TensorRT and cuda-python; ``trt_fixtures``:
  the fixtures installing them (``fake_stack``, ``no_gpu_stack``, ...), registered by ``tests/conftest.py``.
- ``tensorrt_api``: the recorded real TensorRT APIs the fakes and the package are checked against.
- ``s3_server``: a moto S3 server process and a TCP proxy that cuts or stalls responses.
- ``triton``: Triton's model-config schema (``parse_config``) and a gRPC stand-in serving ONNX model folders.
"""
