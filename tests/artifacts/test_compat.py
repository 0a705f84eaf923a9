"""Which plans run where (NVIDIA's rules), and the order compatible plans are taken in: exact first."""

from __future__ import annotations

import pytest

from arcface_trt.artifacts.compat import (
    EXACT,
    HARDWARE_COMPATIBLE,
    VERSION_COMPATIBLE,
    PlanRequest,
    arch_runs,
    kind_of,
    runtimes_text,
    version_runs,
)
from arcface_trt.artifacts.key import EngineKey, Variant
from arcface_trt.artifacts.portability import Portability

STRIPPED = Variant.of({"stripped": True})
VC = Variant.of({"vercompat": True})
NOLEAN = Variant.of({"vercompat": True, "nolean": True})


@pytest.mark.parametrize(
    ("builder", "runtime", "runs"),
    [
        ("10.14.1.48", "10.16.1.11", True),  # a later minor of the same major
        ("10.16.1.11", "10.16.1.11", True),
        ("10.16.1.11", "10.14", False),  # never an older runtime
        ("10.16", "11.4.0.106", True),  # 10.x plans on 11.x (the 11.4.1 support matrix)
        ("11.1", "11.4.0.106", True),
        ("11.4.0.106", "10.16.1.11", False),
        ("8.6.1", "10.16", True),  # 8.6+ plans on 10.x
        ("8.6.1", "11.4", False),  # "No other combination across major versions is supported"
        ("8.5.3", "8.6.1", False),  # version compatibility starts at 8.6
        ("10.16.2", "10.16.1.11", False),  # a newer patch
        ("not a version", "10.16", False),  # manifests are untrusted
    ],
)
def test_nvidias_version_rule(builder: str, runtime: str, runs: bool) -> None:
    assert version_runs(builder, runtime) is runs


def test_the_rule_in_words() -> None:
    assert runtimes_text("10.16.1.11") == "TensorRT 10.16 and later 10.x, and 11.x"
    assert runtimes_text("11.4") == "TensorRT 11.4 and later 11.x"
    assert runtimes_text("8.5") == "none: TensorRT 8.5 builds no version-compatible plans"


def test_arch_rule() -> None:
    assert arch_runs("sm80+", "sm86") and arch_runs("sm80+", "90") and arch_runs("sm80+", "sm120")
    assert not arch_runs("sm80+", "sm75")
    assert arch_runs("sm86", "86") and not arch_runs("sm86", "sm89")
    assert kind_of(EngineKey("m", "fp16", "sm80+", "10.16"), "sm86", "10.16.1.11") == HARDWARE_COMPATIBLE
    assert kind_of(EngineKey("m", "fp16", "sm86", "10.14"), "sm86", "10.16.1.11") == VERSION_COMPATIBLE
    assert kind_of(EngineKey("m", "fp16", "sm86", "10.16"), "sm86", "10.16.1.11") == EXACT


def _request(portability: Portability = Portability(), arch: str = "sm86", version: str = "10.16.1.11") -> PlanRequest:
    return PlanRequest("m", "fp16", {}, portability, arch, version)


def _key(arch: str, version: str, variant: Variant = Variant(), model: str = "m", precision: str = "fp16") -> EngineKey:
    return EngineKey(model, precision, arch, version, variant)


def test_exact_first_then_hardware_then_version_compatible() -> None:
    exact = _key("sm86", "10.16")
    portable = _key("sm80+", "10.16")
    older_vc = _key("sm86", "10.14", VC)
    older_vc_portable = _key("sm80+", "10.12", VC)
    stripped = _key("sm86", "10.16", STRIPPED)
    others = [
        _key("sm89", "10.16"),  # another arch
        _key("sm86", "10.14"),  # another version, not version-compatible
        _key("sm86", "11.4", VC),  # a newer builder
        _key("sm86", "10.16", model="n"),
        _key("sm86", "10.16", precision="fp32"),
        _key("sm86", "10.16", NOLEAN),  # needs a lean runtime library: only when asked for
    ]
    every = [older_vc_portable, portable, *others, older_vc, stripped, exact]
    ranked = _request().candidates(every)
    assert [m.key for m in ranked] == [exact, stripped, portable, older_vc, older_vc_portable]
    assert [m.kind for m in ranked] == [EXACT, EXACT, HARDWARE_COMPATIBLE, VERSION_COMPATIBLE, VERSION_COMPATIBLE]
    # Without the exact plan the compatible ones are taken, in the same order.
    assert [m.key for m in _request().candidates([portable, older_vc])] == [portable, older_vc]
    assert _request().candidates(others) == []


def test_the_requested_weights_come_first() -> None:
    full, stripped = _key("sm86", "10.16"), _key("sm86", "10.16", STRIPPED)
    wants_stripped = _request(Portability(strip_weights=True))
    assert wants_stripped.key == stripped
    assert [m.key for m in wants_stripped.candidates([full, stripped])] == [stripped, full]
    described = wants_stripped.candidates([full])[0].describe()
    assert described == "trt10.16/m-fp16-sm86.plan (weights included)"
    assert _request().candidates([stripped])[0].describe().endswith("(weights stripped: refit from the local ONNX)")


def test_a_version_compatible_request_on_a_later_runtime() -> None:
    on_eleven = _request(Portability(version_compatible=True), version="11.4.0.106")
    ten = _key("sm86", "10.16", VC)
    match = on_eleven.candidates([ten, _key("sm86", "10.16")])
    assert [m.key for m in match] == [ten]
    assert match[0].describe() == (
        "trt10.16/m-fp16-vercompat-" + VC.recipe + "-sm86.plan (version-compatible: built by TensorRT 10.16, "
        "run by 11.4.0.106)"
    )
    lean = _request(Portability(version_compatible=True, exclude_lean_runtime=True))
    assert lean.key.variant == NOLEAN and [m.key for m in lean.candidates([_key("sm86", "10.16", NOLEAN)])]


def test_what_a_match_promises_of_its_manifest() -> None:
    portable = _request().candidates([_key("sm80+", "10.16", STRIPPED)])[0]
    assert portable.expected() == {
        "sm_arch": "sm80+",
        "trt_version": "10.16.1.11",  # not version-compatible: the exact release
        "weights": "stripped",
        "version_compatible": False,
        "lean_runtime": None,
        "hardware_compatibility": "ampere_plus",
    }
    assert portable.accepts("10.16.1.11")
    older = _request().candidates([_key("sm86", "10.14", VC)])[0]
    assert older.expected()["trt_version"] == "10.14" and older.expected()["lean_runtime"] == "embedded"
    assert older.accepts("10.14.1.48") and not older.accepts("10.16.2")
