"""``README.md`` of a model folder: what the model expects and returns, what runs it, and a client snippet.

Rendered from the same :class:`~arcface_trt.export.triton_model.TritonModel` as ``config.pbtxt``.
Names read from model files are flattened to one line before they are written; in the Python
snippet they are Python literals (``repr``), never pasted code.
"""

from __future__ import annotations

from arcface_trt.artifacts.compat import runtimes_text
from arcface_trt.export.triton_model import KIND_GPU, VERSION, TritonModel
from arcface_trt.version import __version__

#: The address the snippet talks to: Triton's default gRPC port.
SNIPPET_URL = "localhost:8001"
#: The crop the snippet reads.
SNIPPET_IMAGE = "face.png"


def _inline(text: str) -> str:
    """One line of ``text`` in a code span (a newline in a file's name must not start a heading)."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def _numbers(values: tuple[float, ...]) -> str:
    """One number when the channels agree, else ``[a, b, c]`` (in the order the channels are fed)."""
    if len(set(values)) == 1:
        return f"{values[0]:g}"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _files(model: TritonModel) -> list[str]:
    lines = ["| file | engine in the arcface-trt cache | sha256 | for |", "|---|---|---|---|"]
    for f in model.files:
        if model.kind != KIND_GPU:
            target = "the CPU (ONNX Runtime)"
        elif f.portable:
            target = f"compute capability 8.0 or newer (portable plan built on {f.built_on})"
        else:
            target = f"compute capability {f.compute_capability} (built on {f.built_on})"
        lines.append(
            f"| {_inline(VERSION + '/' + f.filename)} | {_inline(f.engine)} | {_inline(f.sha256[:16])}… | "
            f"{' '.join(target.split())} |"
        )
    return lines


def _runtime(model: TritonModel) -> list[str]:
    if model.kind != KIND_GPU:
        return [
            "## Runtime",
            "",
            f"An ONNX Runtime CPU engine (`{model.platform}`, `KIND_CPU`) saved by {model.runtime}: run it "
            f"with a Triton release whose ONNX Runtime backend is that version or newer.",
        ]
    lines = ["## TensorRT version", ""]
    if model.version_compatible:
        lines.append(
            f"The plans are version-compatible plans built by TensorRT **{model.trt_version}**: they load in a "
            f"Triton container whose TensorRT is {runtimes_text(str(model.trt_version))} (NVIDIA's Frameworks "
            "Support Matrix lists the TensorRT of each Triton release), started with "
            "`tritonserver --backend-config=tensorrt,version-compatible=true` (they carry TensorRT's lean runtime: "
            "host code that Triton runs only when told to trust the plans)."
        )
    else:
        lines.append(
            f"The plans load only in a Triton container whose TensorRT is **{model.trt_version}**: a plan is tied "
            "to the TensorRT version that built it (NVIDIA's Frameworks Support Matrix lists the TensorRT of "
            "each Triton release). They are not version-compatible plans; a version-compatible plan "
            "(`arcface-trt build --version-compatible`) would load on later TensorRT releases with "
            "`tritonserver --backend-config=tensorrt,version-compatible=true`."
        )
    lines.append("")
    if model.cc_model_filenames:
        fallback = (
            f"other GPUs load {_inline(model.default_model_filename)}"
            if model.default_model_filename
            else "other GPUs have no plan here: build one on such a GPU (`arcface-trt build`) and export again"
        )
        lines.append(
            "Each GPU loads the plan `cc_model_filenames` names for its compute capability "
            f"({', '.join(sorted(model.cc_model_filenames))}); {fallback}."
        )
    elif not model.files[0].portable:
        lines.append(
            f"The plan runs only on GPUs of compute capability {model.files[0].compute_capability}: for other "
            "GPUs, build on such a GPU (`arcface-trt build`) and export again; plans of several GPUs in the "
            "engine cache all go into one folder."
        )
    else:
        lines.append("The plan is portable: it runs on any GPU of compute capability 8.0 or newer.")
    return lines


def _input(model: TritonModel) -> list[str]:
    source, spec, inputs = model.source, model.input, model.source.input_spec
    width, height = source.input_size
    if model.batches:
        shape = f"`[N, {', '.join(map(str, spec.dims))}]` (NCHW) with {model.min_batch} ≤ N ≤ {model.max_batch_size}"
        batching = (
            f"Triton batches requests together up to {model.max_batch_size} crops "
            f"(preferred batch sizes {', '.join(map(str, model.preferred_batch_sizes))})."
        )
    else:
        shape = f"`[{', '.join(map(str, spec.dims))}]` (NCHW): the engine has a fixed batch"
        batching = "The model does not batch (`max_batch_size: 0`): each request carries exactly that batch."
    lines = [
        "## Input",
        "",
        "Triton receives **preprocessed** input, not images: one tensor",
        "",
        f"- {_inline(spec.name)}, `{spec.data_type}`, shape {shape};",
        f"- each crop an aligned face resized to {width}x{height}, colour order **{inputs.color}** "
        + ("(OpenCV reads BGR: swap the channels)," if inputs.color == "RGB" else "(as OpenCV reads it),"),
        f"- each value `(pixel - {_numbers(inputs.fed_mean)}) / {_numbers(inputs.fed_std)}` per channel in that "
        f"order: arcface-trt's input spec for this model ({inputs.describe()}).",
        "",
        batching,
    ]
    if model.precision == "int8":
        lines.append(
            "Compute the input exactly as the snippet below does (OpenCV's `blobFromImage`, as arcface-trt does): "
            "an int8 engine quantizes its input, and arithmetic that differs in the last bit, such as "
            "`(x - mean) / std` in place of `(x - mean) * (1 / std)`, can move pixels across rounding steps."
        )
    if model.batches and model.min_batch > 1:
        lines.append(
            f"The engine's profile starts at batch {model.min_batch}: TensorRT refuses smaller batches "
            "(rebuild with `--min-batch 1` to serve single crops)."
        )
    return lines


def _output(model: TritonModel) -> list[str]:
    spec = model.output
    dims = ", ".join(map(str, spec.dims))
    return [
        "## Output",
        "",
        f"{_inline(spec.name)}, `{spec.data_type}`, dims `[{dims}]`: the raw embedding, **not L2-normalised**. "
        "Divide each row by its L2 norm before comparing embeddings (arcface-trt's backends do; Triton does not).",
    ]


def client_snippet(model: TritonModel) -> str:
    """Python that embeds one crop through ``tritonclient`` with the documented preprocessing."""
    source, spec, inputs = model.source, model.input, model.source.input_spec
    mean, std, rgb = inputs.fed_mean, inputs.fed_std, inputs.color == "RGB"
    uniform = len(set(std)) == 1
    lines = [
        "import cv2",
        "import numpy as np",
        "import tritonclient.grpc as grpcclient",
        "",
        f"crop = cv2.imread({SNIPPET_IMAGE!r})  # an aligned face crop, BGR",
        f"# resize,{' BGR -> RGB,' if rgb else ''} (pixel - mean) / std, NCHW: arcface-trt's own preprocessing",
        f"batch = cv2.dnn.blobFromImage(crop, {f'1.0 / {std[0]!r}' if uniform else '1.0'}, "
        f"{tuple(source.input_size)!r}, {mean!r}, swapRB={rgb})",
    ]
    if not uniform:
        lines.append(f"batch = batch * (1.0 / np.array({std!r}, np.float32)).reshape(1, 3, 1, 1)")
    if spec.dtype != "float32":
        lines.append(f"batch = batch.astype(np.{spec.dtype})")
    return "\n".join(
        [
            *lines,
            "",
            f"client = grpcclient.InferenceServerClient({SNIPPET_URL!r})",
            f"request = grpcclient.InferInput({spec.name!r}, list(batch.shape), {spec.client_datatype!r})",
            "request.set_data_from_numpy(batch)",
            f"wanted = grpcclient.InferRequestedOutput({model.output.name!r})",
            f"result = client.infer({model.name!r}, [request], outputs=[wanted])",
            f"embedding = result.as_numpy({model.output.name!r})[0].astype(np.float32)",
            "embedding /= np.linalg.norm(embedding)  # the model's output is not L2-normalised",
        ]
    )


def render_readme(model: TritonModel) -> str:
    """The ``README.md`` of ``model``'s folder."""
    engine = "TensorRT plans" if model.kind == KIND_GPU else "ONNX Runtime CPU engine"
    lines = [
        f"# {' '.join(model.name.split())}",
        "",
        f"A Triton Inference Server model written by arcface-trt {__version__}: the {model.precision} "
        f"{engine} of {_inline(model.source.name + '.onnx')} (sha256 {_inline(model.source.sha256[:16])}…).",
        "Serve the folder that holds this one: `tritonserver --model-repository <that folder>`.",
        "",
        *_files(model),
        "",
        *_runtime(model),
        "",
        *_input(model),
        "",
        *_output(model),
        "",
        "## Embedding one crop",
        "",
        "With `pip install 'tritonclient[grpc]' opencv-python numpy`:",
        "",
        "```python",
        client_snippet(model),
        "```",
    ]
    return "\n".join(lines) + "\n"
