"""Precision: the plan that decides how each precision is made, and the ONNX transforms it runs.

:mod:`.plan` decides (per precision and target); :mod:`.fp16` (mixed precision) and
:mod:`.int8` (static QDQ quantization) transform the ONNX; :mod:`.cpu_engine` caches
the ONNX Runtime CPU engines made from them. TensorRT 11 builds whatever precision the
ONNX graph carries, and ONNX Runtime runs the same graphs on the CPU, so the
transforms live here, before any backend.
"""
