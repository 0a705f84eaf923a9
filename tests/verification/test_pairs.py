"""Pair-set readers: InsightFace .bin (read and written), LFW pairs.txt (header, both line forms), CSV."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.verification import binfile
from arcface_trt.verification.binfile import read_bin, write_bin
from arcface_trt.verification.pairs import load_pair_set
from tests.verification.test_unpickler import py2_pickle


def _jpeg(face: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", face)
    assert ok
    return buffer.tobytes()


def test_bin_round_trip_and_identical_images_decoded_once(faces: np.ndarray, tmp_path: Path) -> None:
    encoded = [_jpeg(faces[0]), _jpeg(faces[1]), _jpeg(faces[0]), _jpeg(faces[2])]
    path = write_bin(tmp_path / "set.bin", encoded, [False, True])
    bins, issame = read_bin(path)
    assert bins == encoded and issame.tolist() == [False, True]
    pair_set = load_pair_set(path)
    assert pair_set.format == "insightface-bin"
    assert len(pair_set.images) == 3 and pair_set.names == ["bin[0]", "bin[1]", "bin[3]"]
    assert pair_set.left.tolist() == [0, 0] and pair_set.right.tolist() == [1, 2]
    assert pair_set.issame.tolist() == [False, True] and (pair_set.same, pair_set.different) == (1, 1)
    assert pair_set.images[0].shape == (112, 112, 3) and pair_set.images[0].dtype == np.uint8


def test_a_python2_bin_loads_as_a_pair_set(faces: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "lfw.bin"
    path.write_bytes(py2_pickle([_jpeg(f) for f in faces[:4]], [True, False]))
    pair_set = load_pair_set(path)
    assert len(pair_set.images) == 4 and pair_set.issame.tolist() == [True, False]


def test_issame_may_be_a_numpy_bool_array_or_ints(faces: np.ndarray, tmp_path: Path) -> None:
    encoded = [_jpeg(f) for f in faces[:4]]
    for issame in (np.array([True, False]), [1, 0], (np.bool_(True), np.bool_(False))):
        path = tmp_path / "set.bin"
        path.write_bytes(pickle.dumps((encoded, issame), protocol=4))
        assert read_bin(path)[1].tolist() == [True, False]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([b"x"], "holds (bins, issame_list)"),
        (([b"a", b"b"], [2]), "issame_list[0] must be a bool"),
        (([b"a", b"b"], "10"), "issame_list must be a list of bools"),
        (([b"a", b"b"], np.array([[True, False]])), "issame_list must be one bool per pair"),
        (([b"a", b"b"], np.array([1, 0])), "not a readable pair-set pickle"),
        (([b"a", "b"], [True]), "bins[1] must be encoded image bytes"),
        (([b"a", b"b", b"c"], [True]), "holds 3 images for 1 pairs (expected 2)"),
        (([], []), "holds no pairs"),
        (([b"not an image", b"x"], [True]), "bins[0] is not a decodable image"),
    ],
)
def test_a_bin_of_the_wrong_shape_is_one_input_error(payload: object, message: str, tmp_path: Path) -> None:
    path = tmp_path / "odd.bin"
    path.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(InputError) as caught:
        load_pair_set(path)
    assert message in str(caught.value) and str(caught.value).startswith(str(path))


def test_a_bin_larger_than_the_bound_is_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    path = write_bin(tmp_path / "big.bin", [b"a" * 100, b"b" * 100], [True])
    monkeypatch.setattr(binfile, "MAX_BIN_BYTES", 100)
    with pytest.raises(InputError, match=r"larger than a pair-set \.bin can be"):
        read_bin(path)


def _lfw_tree(root: Path, faces: np.ndarray) -> None:
    """Two people as an aligned LFW variant lays them out: Ann as .jpg, Bob as .png."""
    for person, suffix, crops in (("Ann_A", ".jpg", faces[:2]), ("Bob_B", ".png", faces[2:4])):
        (root / person).mkdir(parents=True)
        for number, crop in enumerate(crops, start=1):
            assert cv2.imwrite(str(root / person / f"{person}_{number:04d}{suffix}"), crop)


def test_lfw_pairs_txt_with_header_and_both_line_forms(faces: np.ndarray, tmp_path: Path) -> None:
    _lfw_tree(tmp_path / "lfw", faces)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t2\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t2\nBob_B 1 2\n")
    pair_set = load_pair_set(pairs, tmp_path / "lfw")
    assert pair_set.format == "lfw-pairs" and pair_set.issame.tolist() == [True, False, True]
    names = [Path(n).name for n in pair_set.names]
    assert names == ["Ann_A_0001.jpg", "Ann_A_0002.jpg", "Bob_B_0002.png", "Bob_B_0001.png"]
    assert [names[i] for i in pair_set.right] == ["Ann_A_0002.jpg", "Bob_B_0002.png", "Bob_B_0002.png"]
    # Without a header line the first line is a pair.
    pairs.write_text("Ann_A\t1\t2\n")
    assert len(load_pair_set(pairs, tmp_path / "lfw").issame) == 1


@pytest.mark.parametrize(
    ("text", "root", "message"),
    [
        ("Ann_A 1 2\n", None, "needs --images-root"),
        ("Ann_A 1 2\n", "missing", "--images-root is not a folder"),
        ("10 300\nAnn_A 1\n", "lfw", "pairs.txt:2: expected 'name n1 n2' or 'name1 n1 name2 n2', got 2 fields"),
        ("Ann_A 1 x\n", "lfw", "pairs.txt:1: image number must be an integer"),
        ("Ann_A 1 ²\n", "lfw", "pairs.txt:1: image number must be an integer"),
        ("Ann_A 1 7\n", "lfw", "image not found"),
        ("10 300\n", "lfw", "holds no pairs"),
    ],
)
def test_bad_lfw_pairs_are_one_input_error(
    text: str, root: str | None, message: str, faces: np.ndarray, tmp_path: Path
) -> None:
    _lfw_tree(tmp_path / "lfw", faces)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)):
        load_pair_set(pairs, tmp_path / root if root else None)


def test_csv_pairs_relative_to_the_csv_with_a_header(faces: np.ndarray, tmp_path: Path) -> None:
    (tmp_path / "set" / "img").mkdir(parents=True)
    for i in range(3):
        assert cv2.imwrite(str(tmp_path / "set" / "img" / f"{i}.png"), faces[i])
    csv_path = tmp_path / "set" / "pairs.csv"
    csv_path.write_text("\ufeffpath_a,path_b,same\nimg/0.png,img/1.png,0\n\nimg/0.png, img/2.png ,True\n")
    pair_set = load_pair_set(csv_path)
    assert pair_set.format == "csv" and pair_set.issame.tolist() == [False, True]
    assert [Path(n).name for n in pair_set.names] == ["0.png", "1.png", "2.png"]
    assert np.array_equal(pair_set.images[2], faces[2])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("img/0.png,img/1.png,1\nimg/0.png,img/1.png,maybe\n", "pairs.csv:2: 'same' must be 1/0 or true/false"),
        ("img/0.png,img/1.png\n", "pairs.csv:1: expected path_a,path_b,same, got 2 fields"),
        ("img/0.png,img/9.png,1\n", "image not found"),
        ("path_a,path_b,same\n", "holds no pairs"),
    ],
)
def test_bad_csv_pairs_are_one_input_error(text: str, message: str, faces: np.ndarray, tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    for i in range(2):
        assert cv2.imwrite(str(tmp_path / "img" / f"{i}.png"), faces[i])
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_pair_set(csv_path)
    assert message in str(caught.value)


def test_images_root_goes_with_pairs_txt_only(tmp_path: Path) -> None:
    for name in ("set.bin", "set.csv"):
        with pytest.raises(InputError, match=r"--images-root is for LFW pairs\.txt"):
            load_pair_set(tmp_path / name, tmp_path)
    with pytest.raises(InputError, match="pair-set file not found"):
        load_pair_set(tmp_path / "absent.bin")
