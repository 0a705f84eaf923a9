"""``config.pbtxt``: a :class:`~arcface_trt.export.triton_model.TritonModel` in Triton's model-config text format.

The fields and enums are those of Triton's ``model_config.proto`` (``inference.ModelConfig``);
the tests parse every rendered config with that schema. Names come from model files, so
every string is escaped, never pasted.
"""

from __future__ import annotations

from arcface_trt.export.triton_model import TensorSpec, TritonModel
from arcface_trt.version import __version__


def pbtxt_string(value: str) -> str:
    """A text-format string literal: printable ASCII as is, quotes and backslashes escaped, other bytes in octal."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _ints(values: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _tensor(spec: TensorSpec) -> list[str]:
    return [
        "  {",
        f"    name: {pbtxt_string(spec.name)}",
        f"    data_type: {spec.data_type}",
        f"    dims: {_ints(spec.dims)}",
        "  }",
    ]


def render_config(model: TritonModel) -> str:
    """The ``config.pbtxt`` of ``model``."""
    lines = [
        # No file or tensor name in the comment: a newline in one would end it.
        f"# Written by arcface-trt {__version__} ({model.precision}); README.md says what the model expects.",
        f"name: {pbtxt_string(model.name)}",
        f"platform: {pbtxt_string(model.platform)}",
        f"max_batch_size: {model.max_batch_size}",
        "input [",
        *_tensor(model.input),
        "]",
        "output [",
        *_tensor(model.output),
        "]",
    ]
    if model.batches:
        lines += ["dynamic_batching {", f"  preferred_batch_size: {_ints(model.preferred_batch_sizes)}", "}"]
    lines += ["instance_group [", "  {", f"    kind: {model.kind}", "    count: 1", "  }", "]"]
    if model.default_model_filename:
        lines.append(f"default_model_filename: {pbtxt_string(model.default_model_filename)}")
    for capability, filename in sorted(model.cc_model_filenames.items()):
        lines.append(f"cc_model_filenames {{ key: {pbtxt_string(capability)} value: {pbtxt_string(filename)} }}")
    return "\n".join(lines) + "\n"
