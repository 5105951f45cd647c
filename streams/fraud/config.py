"""The detector's tunables: one frozen config object (it never reads the environment itself).

The cut-offs are conventional levels or round numbers, chosen on ML-100K seed 0 (rating attacks,
5 % attackers / 3 % filler) and the simulator seed 0 (click farm); no threshold was fitted to the
labels of any reported set (docs/detection.md, "Tuning protocol").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DetectorConfig"]


@dataclass(frozen=True)
class DetectorConfig:
    """Cut-offs and schedule of `FraudDetector`; a margin of 1.0 means exactly at a cut-off."""

    threshold: float = 0.5  # score at or above which a user is flagged (0.5 = the decision rule fires)
    rating_scale: tuple[float, float] | None = None  # None: the observed min / max rating
    min_profile: int = 5  # distinct items before profile evidence counts
    pop_min_profile: int = 20  # users in the similarity / consensus population fits (short profiles are noisy)
    neighbours: int = 10  # DegSim k
    growth: float = 1.5  # a touched user is rescored at flush when its profile grew by this factor
    refresh_share: float = 0.01  # share of users rescored in rotation per flush (keeps quiet users fresh) ...
    refresh_events: int = 500  # ... or per this many events, if fewer were folded (the replays' batch)
    # ... but never more users than this per event folded: the rotation's cost per event would
    # otherwise grow with the user count (1 % of 50,000 users per 500 events is one rescore per
    # event, more than the rest of the detector). Above 5,000 users (1 % per 500 events is 0.1
    # per event) a turn of the rotation takes more events instead; the full rescore still reaches
    # every user.
    refresh_max_per_event: float = 0.1
    null_growth: float = 1.1  # the selection null is refitted when the interaction count grew by this factor
    lam_strict: float = 0.5  # selection: share of the profile that looks uniformly chosen ...
    t_strict: float = 3.0  # ... and its significance in null standard errors
    lam_lenient: float = 0.3
    t_lenient: float = 2.0
    sim_strict: float = 2.0  # robust z of a low DegSim
    sim_lenient: float = 3.0
    cons_strict: float = 3.0  # |robust z| of the consensus correlation
    target_min: int = 10  # lenient users acting at the extreme on one item before it can be a target
    target_share: float = 0.5  # ... as a share of all who did, and of the item's lenient actors
    target_z: float = 4.0  # one-sided z; candidates (k >= target_min) are few, so about Bonferroni-safe
    consensus_gap: float = 0.5  # in global rating SDs: the other raters' mean is this far from the extreme
    consensus_min: int = 3  # other actors an item needs before it can be a target
    purchase_share: float = 0.5  # a purchase target is bought by at least this share of those who touch it
    newcomer_events: int = 20  # an account with fewer events is a newcomer (the trust gate's min_events)
    swarm_neighbours: int = 20  # items on each side in popularity rank that set an item's expected newcomer share
    material: float = 0.1  # score change that makes flush report a verdict
