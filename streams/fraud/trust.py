"""The trust gate: may a user's events go into a training batch now, or must they wait?

An account is trusted when it is established (at least `min_events` events and `min_age_s`
seconds since its first event) and not suspicious (score below `max_score`, not flagged, with
`hold_lenient` not in the detector's lenient-suspicious set and, with `hold_swarms`, not marked in a
swarm below `swarm_min_events` events). A swarm mark (`FraudDetector.swarm_of`) says the account
touched, as a newcomer, an item that newcomer accounts swarm: a farm's accounts look like light
genuine users one by one and reach `min_events` before their tell, so the gate asks the group for
more evidence (twice the events by default) rather than hold genuine users who were there for ever.
Events of untrusted accounts
are held back and may be released later, when the account becomes trusted. `gate_shares`
measures a policy on a replay, releases included: the share of attacker events that never reach a
training batch, and the share of genuine events delayed or never trained. Pure: callers pass the facts (or a
detector to read them from); it never reads the clock and must never import faust, kafka or mlflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["TrustPolicy", "may_train", "trusted_after", "gate", "gate_shares"]


@dataclass(frozen=True)
class TrustPolicy:
    """When an account's events may train: established and not suspicious."""

    min_events: int = 20
    min_age_s: float = 0.0
    max_score: float = 0.25
    hold_lenient: bool = True
    hold_swarms: bool = True
    swarm_min_events: int = 40

    @classmethod
    def from_settings(cls, settings) -> TrustPolicy:
        """The policy of the one Settings object (`ADVREC_TRUST_*`)."""
        return cls(
            min_events=settings.trust_min_events,
            min_age_s=settings.trust_min_age_s,
            max_score=settings.trust_max_score,
            hold_lenient=settings.trust_hold_lenient,
            hold_swarms=settings.trust_hold_swarms,
            swarm_min_events=settings.trust_swarm_min_events,
        )


def trusted_after(was: bool, flag: object) -> bool:
    """Whether an account is trusted after one `fraud.flags` record (`FraudFlag` as a mapping; None or
    empty: a tombstone): trusted when the record says so and does not flag it; a record of an older worker
    (no `trusted`) leaves trust as it was unless it flags. Every reader of the topic folds it so."""
    if not isinstance(flag, Mapping) or not flag or flag.get("flagged"):
        return False
    return was if flag.get("trusted") is None else bool(flag["trusted"])


def may_train(
    policy: TrustPolicy,
    n_events: int,
    age_s: float,
    score: float,
    flagged: bool,
    lenient: bool = False,
    swarm: bool = False,
) -> tuple[bool, str]:
    """(True, "trusted") or (False, why): "flagged", "suspicious", "swarm", "new_account" or "young_account".

    `swarm`: the account touched, as a newcomer, an item that newcomers swarm (`FraudDetector.swarm_of`);
    it is held until it has `swarm_min_events` events.
    """
    if flagged:
        return False, "flagged"
    if score >= policy.max_score or (policy.hold_lenient and lenient):
        return False, "suspicious"
    if policy.hold_swarms and swarm and n_events < policy.swarm_min_events:
        return False, "swarm"
    if n_events < policy.min_events:
        return False, "new_account"
    if age_s < policy.min_age_s:
        return False, "young_account"
    return True, "trusted"


def gate(
    policy: TrustPolicy, detector, user_id: str, now_ts: float | None = None, flagged: bool | None = None
) -> tuple[bool, str]:
    """`may_train` with the facts the detector holds for the user; age up to `now_ts` (default: its last
    event); `flagged` in place of the detector's own flag where labels decide it (the stream's agent)."""
    n, first, last = detector.account(user_id)
    if n == 0:
        return False, "new_account"
    v = detector.score(user_id)
    age = (last if now_ts is None else now_ts) - first
    flagged = v.flagged if flagged is None else flagged
    swarm = detector.swarm_of(user_id) is not None
    return may_train(policy, n, age, v.score, flagged, detector.is_lenient(user_id), swarm)


def gate_shares(policy: TrustPolicy, rep, attackers, final_trusted: dict[str, bool] | None = None) -> dict:
    """What the gate did with each event on a replay, counting releases: held events train once trusted.

    `rep` is an `evaluation.Replay` (per event: its user and the user's state at its batch's close);
    `attackers` is a collection of attacker ids; `final_trusted` (user -> trusted at the end, after
    the final rescore) decides the events still waiting then (released if trusted, else never
    trained; without it they count as never trained). An event trains if its user is trusted at
    its batch's close, or later, before the user is flagged (the trainer releases waiting rows
    of accounts that become trusted and drops those of flagged ones). Returns:
    - attacker_events_kept_out: share of attacker events that never reached a training batch;
    - attacker_events_held_at_close: share held when their batch closed (released later or not);
    - genuine_events_delayed: share of genuine events held when their batch closed;
    - genuine_events_never_trained: share of genuine events never released.
    """
    swarm = np.zeros(len(rep.users), bool) if rep.swarm_at_close is None else rep.swarm_at_close
    facts = zip(
        rep.events_at_close.tolist(),
        rep.age_at_close.tolist(),
        rep.score_at_close.tolist(),
        rep.flagged_at_close.tolist(),
        rep.lenient_at_close.tolist(),
        swarm.tolist(),
    )
    trusted = np.array([may_train(policy, *fact)[0] for fact in facts], bool)
    flagged = rep.flagged_at_close.astype(bool)
    users = rep.users.tolist()
    final = final_trusted or {}
    # Backwards in time: an event's fate is its user's first decisive state (trusted or flagged) from
    # its own batch's close on, else the user's state at the end.
    later = {u: bool(final.get(u, False)) for u in set(users)}
    trained = np.zeros(len(users), bool)
    for k in range(len(users) - 1, -1, -1):
        u = users[k]
        if flagged[k]:
            later[u] = False
        elif trusted[k]:
            later[u] = True
        trained[k] = later[u]
    att = np.array([u in attackers for u in users], bool)
    nan = float("nan")
    return {
        "attacker_events_kept_out": float((~trained[att]).mean()) if att.any() else nan,
        "attacker_events_held_at_close": float((~trusted[att]).mean()) if att.any() else nan,
        "genuine_events_delayed": float((~trusted[~att]).mean()) if (~att).any() else nan,
        "genuine_events_never_trained": float((~trained[~att]).mean()) if (~att).any() else nan,
    }
