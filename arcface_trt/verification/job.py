"""``compare --pairs`` and ``compare --identities``: parity judged in identity space.

Both backends embed the images of a pair set (or an identity folder) through the same scoring
core as every comparison (:func:`arcface_trt.parity.score_backends`); then each backend's
verification figures, B - A, the pair decisions that flip, and (for identity folders) rank-1
identification. Two gates: the embedding drift (the tolerance of the precision compared, as in every
comparison) and the accuracy drop (``validation.max_accuracy_drop``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.parity import CompareRequest, ParityResult, parity_result, score_backends
from arcface_trt.verification.identities import Identification, IdentitySet, identify, load_identities
from arcface_trt.verification.metrics import Verification, compare_verification, pair_distances
from arcface_trt.verification.pairs import PairSet, load_pair_set

#: A drop "more than" the allowed one: past float rounding of a difference of means.
_ROUNDING = 1e-12

NN_AGREEMENT_MEANS = (
    "fraction of images whose nearest other image is the same under A and B; among different people this "
    "measures near-ties between non-matches, not identity: the verification and rank-1 figures do"
)


@dataclass(kw_only=True)
class VerificationResult(ParityResult):
    """Parity of B against A on a pair set or an identity folder; truthy when both gates passed."""

    #: Where the pairs came from and what the images were: source, format, counts, images resized per backend.
    pair_set: dict[str, Any]
    flip: bool
    verification: Verification
    identification: Identification | None
    max_accuracy_drop: float
    #: A's accuracy minus B's: 10-fold verification accuracy, and rank-1 for identity folders.
    accuracy_drop: dict[str, float]
    #: Each gate's verdict: ``drift`` (worst-sample cosine), ``accuracy`` (accuracy drop), ``collapse`` (guard).
    checks: dict[str, bool]

    def to_dict(self, per_sample: bool = False) -> dict[str, Any]:
        """JSON-friendly record: the identity-level figures first, the embedding drift after them."""
        lead = ("pair_set", "identification", "verification", "accuracy_drop", "max_accuracy_drop", "checks", "flip")
        data = super().to_dict(per_sample)
        ordered = {key: data.pop(key) for key in lead}
        data["nn_agreement_means"] = NN_AGREEMENT_MEANS
        return {**ordered, **data}


def check_request(request: CompareRequest) -> None:
    """InputError unless the request names exactly one pair source and nothing that conflicts with it."""
    if request.pairs is not None and request.identities is not None:
        raise InputError("give either --pairs or --identities, not both")
    if request.pairs is None and request.identities is None:
        raise InputError("verification needs --pairs FILE or --identities DIR")
    for option, value in (("--images", request.images), ("--npy", request.npy), ("--n-samples", request.n_samples)):
        if value is not None:
            raise InputError(f"{option} does not go with --pairs/--identities (they bring their own images)")
    if request.precisions:
        raise InputError("--precisions is a drift report; with --pairs/--identities use --precision")
    if request.identities is not None and request.images_root is not None:
        raise InputError("--images-root is for LFW pairs.txt files given with --pairs")


def _resized(pair_set: PairSet, input_size: tuple[int, int]) -> int:
    """How many images differ in size from a model input ``(width, height)`` (the preprocessing resizes them)."""
    width, height = input_size
    return sum(1 for image in pair_set.images if image.shape[:2] != (height, width))


def run_verification(request: CompareRequest, advance: Callable[[int], None] | None = None) -> VerificationResult:
    """Load the pair set (or identity folder), embed it with A and B, and judge B against A in identity space."""
    check_request(request)
    identity_set: IdentitySet | None = load_identities(request.identities) if request.identities else None
    pair_set = identity_set.pair_set() if identity_set else load_pair_set(str(request.pairs), request.images_root)
    scoring = score_backends(request, [request.precision_b], advance, crops=pair_set.images)
    (b,) = scoring.rows
    dist_a = pair_distances(scoring.embeddings, pair_set.left, pair_set.right)
    dist_b = pair_distances(b.embeddings, pair_set.left, pair_set.right)
    verification = compare_verification(dist_a, dist_b, pair_set.issame)
    for record in verification.decision_flips.pairs:
        k = record["pair"]
        record["images"] = [pair_set.names[pair_set.left[k]], pair_set.names[pair_set.right[k]]]
    identification = identify(identity_set, scoring.embeddings, b.embeddings) if identity_set else None
    drop = {"verification_accuracy": verification.a.accuracy - verification.b.accuracy}
    if identification is not None:
        drop["rank1"] = identification.rank1_a - identification.rank1_b
    limit = scoring.validation.max_accuracy_drop
    parity = parity_result(scoring)
    checks = {
        "drift": b.stats.passed,
        "accuracy": max(drop.values()) <= limit + _ROUNDING,
        "collapse": not scoring.collapsed,
    }
    return VerificationResult(
        **{**vars(parity), "passed": all(checks.values())},
        pair_set={
            "source": pair_set.source,
            "format": pair_set.format,
            "pairs": len(pair_set.issame),
            "same_pairs": pair_set.same,
            "different_pairs": pair_set.different,
            "images": len(pair_set.images),
            "images_resized": {
                "a": _resized(pair_set, scoring.reference.model.input_size),
                "b": _resized(pair_set, b.embedder.model.input_size),
            },
        },
        flip=request.flip,
        verification=verification,
        identification=identification,
        max_accuracy_drop=limit,
        accuracy_drop=drop,
        checks=checks,
    )
