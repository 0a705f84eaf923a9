"""Identity folders: one sub-folder per person, several aligned crops each.

Rank-1 identification is leave-one-out: each crop is matched against every other crop, and it
is right when its nearest one (by cosine) shows the same person. Only crops whose person has
another crop can be right, so only they are probes; the others stay in the gallery as
distractors. The verification pairs a folder implies are all pairs of its crops.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.inputs import IMAGE_SUFFIXES, list_images, read_images
from arcface_trt.parity import nearest_neighbours
from arcface_trt.records import Record
from arcface_trt.verification.pairs import PairSet

#: Most pairs an identity folder may imply (its crops' distances are held in memory, per backend).
MAX_IMPLIED_PAIRS = 20_000_000


@dataclass
class IdentitySet:
    """Crops with the person each shows."""

    root: str
    identities: list[str]
    images: list[np.ndarray]
    #: Per crop: its path relative to ``root``.
    names: list[str]
    #: Per crop: the index of its person in ``identities``.
    labels: np.ndarray

    def pair_set(self) -> PairSet:
        """Every pair of crops, same-person when both show the same person (pairs in row order of i < j)."""
        left, right = np.triu_indices(len(self.images), k=1)
        return PairSet(
            source=self.root,
            format="identities",
            images=self.images,
            names=self.names,
            left=left.astype(np.int64),
            right=right.astype(np.int64),
            issame=self.labels[left] == self.labels[right],
        )


def load_identities(folder: str | Path) -> IdentitySet:
    """Read ``folder/<person>/<crops>``; a crop outside a person's folder, or a person without crops, is an error."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"--identities is not a folder: {root}")
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if loose:
        raise InputError(f"{root}: images must be in one sub-folder per person, found {loose[0]} at the top")
    people = sorted(p for p in root.iterdir() if p.is_dir())
    if len(people) < 2:
        raise InputError(f"{root}: needs at least two people (sub-folders), found {len(people)}")
    images: list[np.ndarray] = []
    names: list[str] = []
    labels: list[int] = []
    for label, person in enumerate(people):
        paths = list_images(person)
        images.extend(read_images(paths))
        labels.extend([label] * len(paths))
        names.extend(str(p.relative_to(root)) for p in paths)
    counts = np.bincount(labels)
    if counts.max() < 2:
        raise InputError(f"{root}: every person has one crop; rank-1 needs people with two or more")
    pairs = len(images) * (len(images) - 1) // 2
    if pairs > MAX_IMPLIED_PAIRS:
        raise InputError(f"{root}: {len(images)} crops imply {pairs} pairs, more than {MAX_IMPLIED_PAIRS} (use fewer)")
    return IdentitySet(str(root), [p.name for p in people], images, names, np.array(labels, dtype=np.int64))


@dataclass
class Identification(Record):
    """Rank-1 identification of A and B on an identity folder, and how often they name the same person."""

    identities: int
    crops: int
    #: Crops whose person has another crop (the only ones that can be identified).
    probes: int
    rank1_a: float
    rank1_b: float
    #: ``rank1_b - rank1_a``.
    difference: float
    #: Probes for which A and B name the same person (right or wrong).
    agreement: float
    #: Each probe named differently: its path, its person, and the person A and B name.
    disagreements: list[dict[str, str]]


def identify(identity_set: IdentitySet, embeddings_a: np.ndarray, embeddings_b: np.ndarray) -> Identification:
    """Leave-one-out rank-1 of both backends' embeddings of ``identity_set``'s crops."""
    labels = identity_set.labels
    probes = np.flatnonzero(np.bincount(labels)[labels] >= 2)
    named_a = labels[nearest_neighbours(embeddings_a)][probes]
    named_b = labels[nearest_neighbours(embeddings_b)][probes]
    truth = labels[probes]
    rank1_a = float(np.mean(named_a == truth))
    rank1_b = float(np.mean(named_b == truth))
    people = identity_set.identities
    return Identification(
        identities=len(people),
        crops=len(labels),
        probes=len(probes),
        rank1_a=rank1_a,
        rank1_b=rank1_b,
        difference=rank1_b - rank1_a,
        agreement=float(np.mean(named_a == named_b)),
        disagreements=[
            {"crop": identity_set.names[i], "person": people[t], "a": people[a], "b": people[b]}
            for i, t, a, b in zip(probes, truth, named_a, named_b, strict=True)
            if a != b
        ],
    )
