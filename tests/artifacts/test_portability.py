"""Plans that travel: the options' builder flags, names, manifest fields, and the combinations refused."""

from __future__ import annotations

import pytest

from arcface_trt.artifacts.key import EngineKey, Variant
from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.artifacts.portability import Portability, check_options
from arcface_trt.config import TensorrtSection
from arcface_trt.errors import ConfigError, InputError
from tests.support.manifests import plan_manifest
from tests.support.tensorrt_api import load_reference


def test_each_option_sets_its_flags_and_its_tag() -> None:
    stripped = Portability(strip_weights=True)
    # REFIT_IDENTICAL, not REFIT: TensorRT 11.3 documents that REFIT can drop a GEMM bias.
    assert stripped.set_flags == ("STRIP_PLAN", "REFIT_IDENTICAL") and stripped.recipe == {"stripped": True}
    assert stripped.weights == "stripped" and stripped.lean_runtime is None
    portable = Portability(version_compatible=True)
    assert portable.set_flags == ("VERSION_COMPATIBLE",) and portable.lean_runtime == "embedded"
    lean = Portability(version_compatible=True, exclude_lean_runtime=True)
    assert lean.set_flags == ("VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME") and lean.lean_runtime == "excluded"
    assert lean.recipe == {"vercompat": True, "nolean": True}
    assert Portability().set_flags == () and Portability().recipe == {}  # the default plan's name is unchanged
    # The hardware level is a config property, not a flag, and names the arch instead of a tag.
    assert Portability("ampere_plus").set_flags == () and Portability("ampere_plus").recipe == {}
    assert Portability("ampere_plus").plan_arch("sm86") == "sm80+"
    assert Portability("same_cc").plan_arch("86") == "sm86" and Portability().plan_arch(None) is None


@pytest.mark.parametrize("major", ["10", "11"])
def test_the_flags_exist_in_both_recorded_apis(major: str) -> None:
    """Flags are applied by name: each one the options name exists in that TensorRT version's BuilderFlag."""
    flags = set(load_reference(major)["BuilderFlag"]["enum"])
    every = (
        Portability(strip_weights=True).set_flags
        + Portability(version_compatible=True, exclude_lean_runtime=True).set_flags
    )
    assert set(every) <= flags


def test_stripped_and_version_compatible_are_refused_together() -> None:
    with pytest.raises(ConfigError, match=r"--strip-weights.*cannot be combined with.*--version-compatible"):
        check_options(True, True, False)
    with pytest.raises(ConfigError, match="applies to version-compatible plans only"):
        Portability(exclude_lean_runtime=True)
    # A config file with both is refused when it is read, naming the keys.
    with pytest.raises(ConfigError, match=r"tensorrt\.strip_weights"):
        TensorrtSection(strip_weights=True, version_compatible=True)
    with pytest.raises(ConfigError, match="unknown hardware compatibility"):
        Portability("turing_plus")


def test_what_a_name_says_of_its_plan() -> None:
    key = EngineKey("m", "fp16", "sm80+", "10.16", Variant.of({"stripped": True}))
    assert key.stripped and key.hardware_compatible and not key.version_compatible
    assert Portability.of_key(key) == Portability("ampere_plus", strip_weights=True)
    vc = EngineKey("m", "fp16", "sm90", "10.16", Variant.of({"vercompat": True, "nolean": True}))
    assert Portability.of_key(vc) == Portability(version_compatible=True, exclude_lean_runtime=True)


def test_ampere_plus_is_built_on_ampere_or_newer() -> None:
    Portability("ampere_plus").check_gpu("sm80")
    Portability("same_cc").check_gpu("sm75")
    with pytest.raises(InputError, match=r"Ampere or newer GPU .* this one is sm75"):
        Portability("ampere_plus").check_gpu("75")


def test_a_manifest_whose_fields_contradict_its_name_is_malformed() -> None:
    """A stripped name over weights "full" (or sm80+ over another level) would be loaded as what it is not."""
    good = plan_manifest("m", "fp16", "sm90", "10.16.1.11", recipe={"stripped": True}, weights="stripped")
    assert Manifest.from_dict(good.to_dict()).key.stripped
    for fields in (
        {"recipe": {"stripped": True}},  # weights left "full"
        {"weights": "stripped"},  # no tag
        {"recipe": {"vercompat": True}, "version_compatible": True},  # lean_runtime not said
    ):
        bad = plan_manifest("m", "fp16", "sm90", "10.16.1.11", **fields)
        with pytest.raises(InputError, match="its name m-fp16"):
            Manifest.from_dict(bad.to_dict())
    impossible = plan_manifest(
        "m", "fp16", "sm90", "10.16.1.11", recipe={"stripped": True, "vercompat": True}, weights="stripped"
    )
    with pytest.raises(InputError, match="names options no plan is built with"):  # never a ConfigError from a file
        Manifest.from_dict(impossible.to_dict())
    wrong_level = plan_manifest("m", "fp16", "sm80+", "10.16.1.11", hardware_compatibility="none")
    with pytest.raises(InputError, match="hardware_compatibility ampere_plus"):
        Manifest.from_dict(wrong_level.to_dict())
