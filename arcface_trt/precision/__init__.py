"""Precision transforms that serve every backend: fp16 mixed-precision and int8 QDQ ONNX.

TensorRT 11 builds whatever precision the ONNX graph carries, and ONNX Runtime runs
the same graphs on the CPU, so the transforms live here, before any backend.
Submodules import their heavy dependencies (onnx, onnxruntime, onnxconverter-common)
inside functions, so importing this package is cheap.
"""

from __future__ import annotations

PRECISIONS = ("fp32", "fp16", "int8")
