"""A strict fake ``tensorrt`` in two shapes (10.16-like and 11.4-like), one module per TensorRT concept.

:mod:`.module` (``make_tensorrt``) assembles :mod:`.logger`, :mod:`.network`, :mod:`.parser`
(with :mod:`.qdq`, the parser's Q/DQ rules), :mod:`.builder_config`, :mod:`.timing_cache`,
:mod:`.progress` (the build's phases), :mod:`.builder` (with :mod:`.layers`, the engine's layers),
:mod:`.plan`, :mod:`.engine`, :mod:`.inspector` and :mod:`.runtime`, with :mod:`.enums` holding
the headers' values. Every public name, member and method signature is checked against the
recorded real APIs (``tests/engine/test_fake_conformance.py``), over each class's whole MRO.
The fake is meant to fail wherever a GPU with TensorRT would: see each module's docstring.
"""

from tests.support.faketrt.env import VERSIONS, BuildRecord
from tests.support.faketrt.module import make_tensorrt

__all__ = ["VERSIONS", "BuildRecord", "make_tensorrt"]
