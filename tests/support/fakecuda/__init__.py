"""A strict, asynchronous fake of cuda-python's runtime module (``cuda.bindings.runtime``).

One module per CUDA concept: :mod:`.types` (error codes, enums, handles), :mod:`.device`
(GPUs and the driver), :mod:`.memory` (device and page-locked host allocations),
:mod:`.stream` (streams: work runs only when the stream is synchronised or queried),
:mod:`.event` (events: elapsed time only once both have completed), :mod:`.graph`
(captured and instantiated CUDA graphs) and :mod:`.runtime` (:class:`FakeCuda`, the state
behind one fake module, whose ``cuda*`` methods have cuda-python's call shapes).
"""

from tests.support.fakecuda.device import FakeDevice
from tests.support.fakecuda.runtime import FakeCuda

__all__ = ["FakeCuda", "FakeDevice"]
