"""The one naming scheme: every form of engine name is built by EngineKey and read back by EngineKey.parse."""

from __future__ import annotations

import pytest

from arcface_trt.artifacts.key import (
    AMPERE_PLUS_ARCH,
    EngineKey,
    Variant,
    compute_capability,
    engine_stem,
    normalize_arch,
)
from arcface_trt.errors import InputError

KEEP = Variant.of({"keep": ["fc", "features"]})
TWO_TAGS = Variant.of({"strip": True, "vc": True})

FORMS = [
    # (key, relpath of the engine) for each form the scheme has
    (EngineKey("w600k_r50", "fp16", "sm90", "10.16.1.11"), "trt10.16/w600k_r50-fp16-sm90.plan"),
    (EngineKey("glint-r100.v2", "int8", "86", "11.4"), "trt11.4/glint-r100.v2-int8-sm86.plan"),
    (EngineKey("w600k_r50", "fp16", "sm90", "11.4", KEEP), f"trt11.4/w600k_r50-fp16-keep-{KEEP.recipe}-sm90.plan"),
    (
        EngineKey("m", "fp32", AMPERE_PLUS_ARCH, "10.16", TWO_TAGS),
        f"trt10.16/m-fp32-strip-vc-{TWO_TAGS.recipe}-sm80+.plan",
    ),
    (EngineKey("m", "fp16", "80+", "10.16"), "trt10.16/m-fp16-sm80+.plan"),
    (EngineKey.cpu("arcface_r18", "int8"), "cpu/arcface_r18-int8-cpu.onnx"),
    (EngineKey.cpu("arcface_r18", "fp16", KEEP), f"cpu/arcface_r18-fp16-keep-{KEEP.recipe}-cpu.onnx"),
    # model names that look like parts of the scheme still round-trip
    (EngineKey("net-fp16", "fp32", "sm89", "10.16", KEEP), f"trt10.16/net-fp16-fp32-keep-{KEEP.recipe}-sm89.plan"),
    (EngineKey("abc-deadbeef", "fp16", "sm75", "10.16"), "trt10.16/abc-deadbeef-fp16-sm75.plan"),
]


@pytest.mark.parametrize(("key", "relpath"), FORMS, ids=[relpath for _, relpath in FORMS])
def test_every_form_round_trips(key: EngineKey, relpath: str) -> None:
    assert key.relpath == relpath
    assert EngineKey.parse(relpath) == (key, False)
    manifest = relpath.rsplit(".", 1)[0] + ".json"
    assert key.manifest_relpath == manifest
    assert EngineKey.parse(manifest) == (key, True)


def test_the_default_recipe_keeps_the_familiar_name() -> None:
    key = EngineKey("w600k_r50", "fp16", "9.0", "10.16.1")
    assert key.name == "w600k_r50-fp16-sm90.plan" and key.folder == "trt10.16" and key.target == "gpu"
    assert Variant.of({}) == Variant() and Variant().is_default and str(Variant()) == "default"
    cpu = EngineKey.cpu("w600k_r50", "fp32")
    assert (cpu.name, cpu.folder, cpu.target) == ("w600k_r50-fp32-cpu.onnx", "cpu", "cpu")


def test_recipe_hash_follows_the_options() -> None:
    assert Variant.of({"keep": ["a"]}) == Variant.of({"keep": ["a"]})
    assert Variant.of({"keep": ["a"]}).recipe != Variant.of({"keep": ["b"]}).recipe
    assert Variant.of({"vc": True, "strip": True}) == TWO_TAGS  # tags are sorted, the hash ignores order
    assert TWO_TAGS.tags == ("strip", "vc") and len(TWO_TAGS.recipe) == 8
    assert str(KEEP) == f"keep-{KEEP.recipe}"


@pytest.mark.parametrize(
    "relpath",
    [
        "trt10.16/model.plan",  # too few parts
        "trt10.16/m-fp8-sm90.plan",  # unknown precision
        "trt10.16/m-fp16-sm90.onnx",  # a plan folder holds plans
        "cpu/m-fp16-sm90.onnx",  # a CPU engine is named for the CPU
        "trt10.16/m-fp16-cpu.plan",  # and a plan for a GPU
        "trt10.16/m-fp16-sm_90.plan",  # not the normalised arch
        "trt10/m-fp16-sm90.plan",  # not a TensorRT folder
        "other/m-fp16-sm90.plan",
        "trt10.16/sub/m-fp16-sm90.plan",
        "trt10.16/m-fp16-deadbeef-sm90.plan",  # a recipe hash without a tag
        "trt10.16/m-fp16-Keep-deadbeef-sm90.plan",  # tags are lower case
        "trt10.16/m-fp16-keep-deadbee-sm90.plan",  # the recipe is 8 hex characters
        "trt10.16/.hidden-fp16-sm90.plan",
        "trt10.16/-fp16-sm90.plan",
        "trt10.16/timing-sm90.cache",
        # a newline anywhere (a pattern ending in "$" alone would let a trailing one through)
        "trt10.16/ok\n-fp16-sm90.plan",
        "trt10.16/m-fp16-keep\n-deadbeef-sm90.plan",
        "trt10.16/m-fp16-keep-deadbeef\n-sm90.plan",
        "trt10.16\n/m-fp16-sm90.plan",
        "trt10.16/m-fp16-sm90\n.plan",
        "trt10.16/m-fp16-sm90.plan\n",
        "trt10.16/[/bad]-fp16-sm90.plan",
        "trt10.16/a\x1b[31m-fp16-sm90.plan",
    ],
)
def test_other_names_are_not_engines(relpath: str) -> None:
    assert EngineKey.parse(relpath) is None


def test_invalid_keys_are_refused() -> None:
    with pytest.raises(InputError, match="model name"):
        EngineKey("a/b", "fp16", "sm90", "10.16")
    with pytest.raises(InputError, match="model name"):
        EngineKey("name\n", "fp16", "sm90", "10.16")
    with pytest.raises(InputError, match="unknown precision"):
        EngineKey("m", "fp8", "sm90", "10.16")
    with pytest.raises(InputError, match="needs the TensorRT version"):
        EngineKey("m", "fp16", "sm90")
    with pytest.raises(InputError, match="no TensorRT version"):
        EngineKey("m", "fp16", "cpu", "10.16")
    with pytest.raises(InputError, match="not an engine variant"):
        Variant(("fp16",), "deadbeef")  # a tag never looks like a precision
    with pytest.raises(InputError, match="not a GPU compute capability"):
        normalize_arch("hopper")


def test_dry_run_names_come_from_the_same_function() -> None:
    assert engine_stem("m", "fp16", KEEP, "sm<arch>") == f"m-fp16-keep-{KEEP.recipe}-sm<arch>"
    for bad in ("../../evil", "a/b/c", "ok\n", ".hidden", "a b", "[/bad]", ""):
        with pytest.raises(InputError, match="model name"):
            engine_stem(bad, "fp16", Variant(), "sm<arch>")  # a dry run refuses what a build refuses
    assert EngineKey("m", "fp16", "sm90", "10.16", KEEP).stem == engine_stem("m", "fp16", KEEP, "sm90")


@pytest.mark.parametrize(
    ("arch", "capability"),
    [("sm75", "7.5"), ("86", "8.6"), ("sm_89", "8.9"), ("sm90", "9.0"), ("sm100", "10.0"), ("sm120", "12.0")],
)
def test_compute_capability_is_cudas_spelling(arch: str, capability: str) -> None:
    """What Triton's cc_model_filenames keys on: ``major.minor``, the minor being the last digit."""
    assert compute_capability(arch) == capability


def test_a_portable_arch_names_no_compute_capability() -> None:
    assert compute_capability(AMPERE_PLUS_ARCH) is None
