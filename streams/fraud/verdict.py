"""What the detector says about one user: the `Verdict` record and the detector's version tag."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["DETECTOR_VERSION", "Verdict"]

DETECTOR_VERSION = "fraud-2"


@dataclass(frozen=True)
class Verdict:
    """A user's current suspicion: score in [0, 1], flagged, reasons, and the evidence behind it."""

    user_id: str
    score: float
    flagged: bool
    reasons: tuple[str, ...]
    features: dict[str, float] = field(default_factory=dict)
    version: str = DETECTOR_VERSION

    def to_dict(self) -> dict:
        """A JSON-able dict of the verdict (NaN features become null)."""
        feats = {k: (None if v != v else v) for k, v in self.features.items()}
        return {**asdict(self), "reasons": list(self.reasons), "features": feats}
