"""``compare --pairs`` / ``--identities`` and ``make-pairs``: parity judged in identity space, through the CLI."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli.test_compare_precision import COMPARE_KEYS
from tests.support.cli import invoke, run_cli
from tests.verification.test_identities import write_identity_tree

#: Pairs of the demo set the tests use (at most 80 distinct images to embed).
DEMO_PAIRS = 40
#: What leads the JSON of compare --pairs/--identities, in this order.
IDENTITY_KEYS = ["pair_set", "identification", "verification", "accuracy_drop", "max_accuracy_drop", "checks", "flip"]


@pytest.fixture(scope="module")
def demo_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy pair set, written by the command users run."""
    path = tmp_path_factory.mktemp("pairs") / "demo.bin"
    result = invoke("make-pairs", "--out", path, "--n-pairs", DEMO_PAIRS, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["path"] == str(path) and record["pairs"] == DEMO_PAIRS and record["identities"] == 7
    return path


def _compare(model: Path, *args: object):
    return invoke("compare", "--onnx-path", model, *args)


def test_make_pairs_as_a_user_runs_it(tmp_path: Path) -> None:
    proc = run_cli("make-pairs", "--out", tmp_path / "demo.bin", "--n-pairs", "40")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {tmp_path / 'demo.bin'}") and "a toy set" in proc.stdout
    bad_out = tmp_path / "demo.pkl"
    bad = run_cli("make-pairs", "--out", bad_out)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: --out must end in .bin (compare reads a pair set's format from its suffix), got {bad_out}"
    ]


def test_compare_pairs_json_report_and_roc_chart(r18_model: Path, demo_bin: Path, tmp_path: Path) -> None:
    report, chart = tmp_path / "report.json", tmp_path / "roc.png"
    result = _compare(r18_model, "--pairs", demo_bin, "--json", "--output", report, "--plot", chart)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data)[: len(IDENTITY_KEYS)] == IDENTITY_KEYS
    assert set(data) >= COMPARE_KEYS  # the drift figures stay, below the identity-level ones
    assert "near-ties between non-matches" in data["nn_agreement_means"]
    pair_set = data["pair_set"]
    assert pair_set["format"] == "insightface-bin" and pair_set["pairs"] == DEMO_PAIRS
    assert (pair_set["same_pairs"], pair_set["different_pairs"]) == (20, 20)
    assert pair_set["images"] == data["n_samples"] and pair_set["images_resized"] == {"a": 0, "b": 0}
    a, b = data["verification"]["a"], data["verification"]["b"]
    for metrics in (a, b):
        assert 0.5 <= metrics["accuracy"] <= 1.0 and len(metrics["fold_accuracies"]) == 10
        assert metrics["accuracy"] == pytest.approx(np.mean(metrics["fold_accuracies"]))
        assert 0.5 <= metrics["auc"] <= 1.0 and 0.0 <= metrics["eer"] <= 0.5
        tar = {row["far"]: row["tar"] for row in metrics["tar_at_far"]}
        assert set(tar.values()) == {None}  # 20 different-person pairs: too few for FAR 0.1
        t = metrics["threshold"]
        assert t["cosine"] == pytest.approx(1 - t["l2_squared"] / 2)
    # The same model on ONNX Runtime and the InsightFace reference: identical decisions.
    assert a["accuracy"] == b["accuracy"] and data["verification"]["difference"]["accuracy"] == 0
    assert data["verification"]["decision_flips"]["count"] == 0
    assert data["checks"] == {"drift": True, "accuracy": True, "collapse": True} and data["passed"] is True
    assert data["identification"] is None and data["flip"] is False
    saved = json.loads(report.read_text())
    assert len(saved["per_sample_cosine"]) == pair_set["images"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_pairs_table_leads_with_verification(r18_model: Path, demo_bin: Path) -> None:
    result = _compare(r18_model, "--pairs", demo_bin)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Verification parity on demo.bin ({DEMO_PAIRS} pairs): B vs A  PASS" in out
    rows = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert rows.index("accuracy,") < rows.index("ROC") < rows.index("EER") < rows.index("TAR")
    assert "TAR @ FAR 0.1 needs 100 different-person pairs" in out
    assert f"decisions that flip at A's threshold: 0 of {DEMO_PAIRS}" in out
    assert "nearest-neighbour agreement" in out and "not identity" in out


def test_int8_engine_against_fp32_on_pairs(r18_model: Path, r18_int8_engine, demo_bin: Path) -> None:
    args = ["--backend-a", "onnxruntime", "--precision", "int8", "--pairs", demo_bin, "--json"]
    result = _compare(r18_model, *args, "--max-drift-cosine", "0.05", "--max-accuracy-drop", "1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["backend_b"]["precision"] == "int8" and data["backend_a"]["precision"] == "fp32"
    a, b = data["verification"]["a"], data["verification"]["b"]
    difference = data["verification"]["difference"]
    assert difference["accuracy"] == pytest.approx(b["accuracy"] - a["accuracy"])
    assert difference["auc"] == pytest.approx(b["auc"] - a["auc"])
    assert data["accuracy_drop"] == {"verification_accuracy": pytest.approx(a["accuracy"] - b["accuracy"])}
    assert 0.99 <= data["cosine"]["mean"] < 0.99999
    flips = data["verification"]["decision_flips"]
    assert flips["count"] == len(flips["pairs"]) == flips["now_right"] + flips["now_wrong"]
    for flip in flips["pairs"]:
        threshold = flips["threshold"]["cosine"]
        assert (flip["cosine_a"] > threshold) != (flip["cosine_b"] > threshold)
        assert all(name.startswith("bin[") for name in flip["images"])
    # By default int8 is judged by its own tolerance; the fp32 one (1e-3 on the worst sample) is tighter than
    # int8 keeps: exit 1, the JSON says why.
    default = json.loads(_compare(r18_model, *args, "--max-accuracy-drop", "1").stdout)
    assert default["checks"]["drift"] is True and default["tolerance_key"] == "validation.max_drift_cosine_int8"
    strict = _compare(r18_model, *args, "--max-accuracy-drop", "1", "--max-drift-cosine", "0.001")
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["checks"] == {"drift": False, "accuracy": True, "collapse": True}


def test_the_accuracy_gate(r18_model: Path, r18_model_seed1: Path, demo_bin: Path) -> None:
    """Two different models: whichever order makes B the less accurate fails the gate (exit 1), the other passes."""
    outcomes = []
    for a, b in ((r18_model, r18_model_seed1), (r18_model_seed1, r18_model)):
        result = invoke(
            "compare", "--onnx-path", a, "--onnx-path-b", b, "--pairs", demo_bin, "--json",
            "--max-drift-cosine", "2", "--max-accuracy-drop", "0",
        )  # fmt: skip
        data = json.loads(result.stdout)
        drop = data["accuracy_drop"]["verification_accuracy"]
        assert data["checks"] == {"drift": True, "accuracy": drop <= 0, "collapse": True}
        assert result.exit_code == (1 if drop > 0 else 0), result.output
        outcomes.append(drop)
    assert outcomes[0] == pytest.approx(-outcomes[1]) and outcomes[0] != 0


Pair = tuple[str, int, str, int]


def _write_lfw(root: Path, people: int = 4, crops: int = 4) -> list[Pair]:
    """An aligned-LFW-like tree under ``root/images``; all same-person pairs and as many different ones, alternating."""
    from arcface_trt.faces import sample_faces

    faces = sample_faces(7 * crops)
    for k in range(people):
        (root / "images" / f"P_{k}").mkdir(parents=True)
        for j in range(crops):
            assert cv2.imwrite(str(root / "images" / f"P_{k}" / f"P_{k}_{j + 1:04d}.jpg"), faces[k + 7 * j])
    numbers = range(1, crops + 1)
    same = [(f"P_{k}", i, f"P_{k}", j) for k in range(people) for i in numbers for j in numbers if i < j]
    different = [
        (f"P_{k}", (i - 1) % crops + 1, f"P_{(k + 1) % people}", i % crops + 1)
        for k in range(people)
        for i in range(1, 7)
    ]
    return [pair for two in zip(same, different, strict=True) for pair in two]


def test_lfw_pairs_txt_and_csv_through_compare(r18_model: Path, tmp_path: Path) -> None:
    root = tmp_path / "lfw"
    pairs = _write_lfw(root)
    lines = [f"{a}\t{i}\t{j}" if a == b else f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in pairs]
    (root / "pairs.txt").write_text(f"1\t{len(pairs) // 2}\n" + "\n".join(lines) + "\n")
    result = _compare(r18_model, "--pairs", root / "pairs.txt", "--images-root", root / "images", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["pair_set"]["format"] == "lfw-pairs" and data["pair_set"]["pairs"] == 48
    assert data["pair_set"]["images"] == 16 and data["pair_set"]["same_pairs"] == 24
    # The same pairs as CSV, with one image at another size (resized by the preprocessing, and counted).
    first = root / "images" / "P_0" / "P_0_0001.jpg"
    assert cv2.imwrite(str(first), cv2.resize(cv2.imread(str(first)), (160, 160)))
    rows = [f"images/{a}/{a}_{i:04d}.jpg,images/{b}/{b}_{j:04d}.jpg,{int(a == b)}" for a, i, b, j in pairs]
    (root / "pairs.csv").write_text("path_a,path_b,same\n" + "\n".join(rows) + "\n")
    result = _compare(r18_model, "--pairs", root / "pairs.csv", "--json")
    assert result.exit_code == 0, result.output
    csv_data = json.loads(result.stdout)
    assert csv_data["pair_set"]["format"] == "csv" and csv_data["pair_set"]["pairs"] == 48
    assert csv_data["pair_set"]["images_resized"] == {"a": 1, "b": 1}


def test_identity_folders_with_flip(r18_model: Path, tmp_path: Path) -> None:
    from arcface_trt.faces import sample_faces

    root = write_identity_tree(tmp_path / "people", sample_faces(28), people=5, crops=4)
    result = _compare(r18_model, "--identities", root, "--flip", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ident = data["identification"]
    assert (ident["identities"], ident["crops"], ident["probes"]) == (5, 20, 20)
    assert ident["rank1_a"] == ident["rank1_b"] and ident["agreement"] == 1.0 and ident["disagreements"] == []
    assert data["pair_set"]["format"] == "identities" and data["pair_set"]["pairs"] == 190
    assert (data["pair_set"]["same_pairs"], data["pair_set"]["different_pairs"]) == (30, 160)
    assert data["flip"] is True and set(data["accuracy_drop"]) == {"verification_accuracy", "rank1"}
    for side in ("a", "b"):  # 160 different-person pairs: TAR at FAR 0.1 (16 false accepts) is measured
        tar = {row["far"]: row["tar"] for row in data["verification"][side]["tar_at_far"]}
        assert 0.0 <= tar[0.1] <= 1.0 and tar[0.01] is None
    table = run_cli("compare", "--onnx-path", r18_model, "--identities", root, env={"COLUMNS": "100"})
    assert table.returncode == 0, table.stderr
    assert "Identity parity on people (190 pairs)" in table.stdout
    assert table.stdout.index("rank-1") < table.stdout.index("accuracy, 10-fold") < table.stdout.index("TAR @ FAR 0.1")


def _hostile_bin(path: Path, marker: Path) -> Path:
    class Exploit:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    path.write_bytes(pickle.dumps(([b"\xff\xd8", Exploit()], [True]), protocol=4))
    return path


def _bad_inputs(tmp_path: Path, demo_bin: Path) -> list[tuple[list[object], str]]:
    marker = tmp_path / "marker"
    evil = _hostile_bin(tmp_path / "evil.bin", marker)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(demo_bin.read_bytes()[:5000])
    text = tmp_path / "text.bin"
    text.write_text("Abe_Vigoda 1 2\n")
    pairs_txt = tmp_path / "pairs.txt"
    pairs_txt.write_text("A 1 2\n")
    return [
        (["--pairs", evil], f"error: {evil}: refused: the pickle asks for posix.system"),
        (["--pairs", truncated], f"error: {truncated}: not a readable pair-set pickle (truncated or not a pickle"),
        (["--pairs", text], f"error: {text}: not a readable pair-set pickle"),
        (["--pairs", pairs_txt], "needs --images-root"),
        (["--pairs", demo_bin, "--images", tmp_path], "--images does not go with --pairs/--identities"),
        (["--pairs", demo_bin, "--n-samples", "5"], "--n-samples does not go with --pairs/--identities"),
        (["--pairs", demo_bin, "--identities", tmp_path], "give either --pairs or --identities"),
        (["--pairs", demo_bin, "--precisions", "fp32,int8"], "--precisions is a drift report"),
        (["--pairs", demo_bin, "--plot", tmp_path / "roc.svg"], "--plot writes a PNG"),
        (["--pairs", demo_bin, "--max-accuracy-drop", "2"], "'validation.max_accuracy_drop' must be <= 1.0"),
        (["--flip"], "--flip goes with --pairs or --identities"),
        (["--plot", tmp_path / "roc.png"], "--plot goes with --pairs or --identities"),
        (["--images-root", tmp_path], "--images-root goes with --pairs or --identities"),
        (["--identities", tmp_path / "absent"], "--identities is not a folder"),
    ]


def test_bad_pair_input_is_one_line_exit_2_and_runs_nothing(r18_model: Path, demo_bin: Path, tmp_path: Path) -> None:
    for args, message in _bad_inputs(tmp_path, demo_bin):
        result = _compare(r18_model, *args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert message in lines[0], (args, lines[0])
        assert result.stdout == ""
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / "roc.png").exists()


def test_a_hostile_bin_in_a_real_process_runs_nothing(r18_model: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = _hostile_bin(tmp_path / "lfw.bin", marker)
    proc = run_cli("compare", "--onnx-path", r18_model, "--pairs", evil, "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {evil}: refused: the pickle asks for posix.system")
    assert "Traceback" not in proc.stderr and not marker.exists()
