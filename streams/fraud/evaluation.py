"""Honest offline evaluation: inject attacks, hide who is who, replay batch by batch, score both ways.

Preparation (`prepare`): attacks from `streams.sources.attacks` are appended to the genuine rows;
every user id (genuine and injected) is replaced by an opaque random id, so neither id format
nor id order carries signal; a file without timestamps gets one seeded random order for all of
its rows (injected ones included), so file order carries none either; labelled attackers'
ratings outside the genuine scale are clipped to it (SDLib writes a 5 on FilmTrust's 0.5–4
scale, which a validating stream would reject).

Replay (`replay`): events in time order through the very `FraudDetector` the stream uses,
`flush()` after every batch like the worker, `flush(full=True)` at the end. Two kinds of figures:
- end of replay: flags after the last batch and the final full rescore (`detection_scores`);
- streaming (`streaming_metrics`): flags as they stood when each batch closed: precision / recall
  over (user, batch) pairs, the share of attacker (and genuine) events whose user was flagged when
  their batch closed, and per attacker the median number of its own events and of seconds since
  its first event until its first flag.
Pure: frames in, dicts out; reading files and printing belong to the CLI. Labels never reach the
detector.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from streams.fraud.config import DetectorConfig
from streams.fraud.detector import FraudDetector
from streams.fraud.scoring import best_f1, detection_scores
from streams.fraud.trust import TrustPolicy, gate, gate_shares
from streams.sources.attacks import AttackPlan, AttackSpec, plan_attack, summarize

__all__ = [
    "SYNTHETIC_T0",
    "events_frame",
    "read_labels",
    "inject_attacks",
    "plan_rows",
    "with_plans",
    "anonymize",
    "clip_to_genuine_scale",
    "prepare",
    "Prepared",
    "Replay",
    "replay",
    "detection_scores",
    "streaming_metrics",
    "best_f1",
    "final_trust",
    "score_replay",
    "evaluate",
]

SYNTHETIC_T0 = 1_000_000_000.0
LABEL_WORDS = {"fraud": 1, "attack": 1, "genuine": 0, "legit": 0}


def read_labels(path) -> dict[str, int]:
    """Read `user label [...]` lines (whitespace, tab or comma; 1 / "fraud" = attacker, 0 / "genuine") into a dict."""
    labels: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.replace(",", " ").split()
            if len(parts) < 2:
                continue
            word = parts[1].lower()
            if word.lstrip("-").isdigit():
                labels[parts[0]] = int(word)
            elif word in LABEL_WORDS:
                labels[parts[0]] = LABEL_WORDS[word]
    return labels


def inject_attacks(
    ratings: pd.DataFrame, specs: Iterable[AttackSpec], seed: int
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Append the events of each attack (seeds seed, seed+1, ...) as rows; return them and {attacker: kind}."""
    pop = summarize(ratings)
    return with_plans(ratings, [plan_attack(spec, pop, seed + k) for k, spec in enumerate(specs)])


def plan_rows(plan: AttackPlan) -> pd.DataFrame:
    """An attack plan's events as rows (user, item, rating, timestamp, type); clicks have no rating."""
    ev = pd.DataFrame(list(plan.events()), columns=["user_id", "item_id", "type", "ts", "value"])
    rating = np.where(ev["type"] == "rating", ev["value"].astype(float), np.nan)
    return pd.DataFrame(
        {"user": ev["user_id"], "item": ev["item_id"], "rating": rating, "timestamp": ev["ts"], "type": ev["type"]}
    )


def with_plans(ratings: pd.DataFrame, plans: Iterable[AttackPlan]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The genuine rows plus every plan's rows; and {attacker: kind}."""
    frames, kinds = [ratings[["user", "item", "rating", "timestamp"]].assign(type=ratings.get("type", "rating"))], {}
    for plan in plans:
        frames.append(plan_rows(plan))
        kinds.update({user: kind for user, _, kind in plan.labels()})
    return pd.concat(frames, ignore_index=True), kinds


def events_frame(events: Iterable[dict]) -> pd.DataFrame:
    """Event dicts (the simulator's, a replay's) as the frame `prepare` and `replay` read: clicks and
    purchases carry no rating."""
    ev = list(events)
    return pd.DataFrame(
        {
            "user": [e["user_id"] for e in ev],
            "item": [e["item_id"] for e in ev],
            "rating": np.nan,
            "timestamp": [e["ts"] for e in ev],
            "type": [e["type"] for e in ev],
        }
    )


def anonymize(frame: pd.DataFrame, seed: int, retime: bool = False) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every user id replaced by an opaque 12-hex id; with `retime`, all rows re-timed in one seeded random order.

    Returns the frame in time order and {old id: new id}.
    """
    users = sorted(frame["user"].astype(str).unique())
    rng = np.random.default_rng(seed + 7919)
    ids: set[str] = set()
    while len(ids) < len(users):
        ids.add(f"{int(rng.integers(0, 2**48)):012x}")
    new = sorted(ids)
    mapping = dict(zip(users, (new[k] for k in rng.permutation(len(new)))))
    out = frame.assign(user=frame["user"].astype(str).map(mapping))
    if retime:
        out["timestamp"] = SYNTHETIC_T0 + np.random.default_rng(seed).permutation(len(out)).astype(float)
    order = np.lexsort((np.arange(len(out)), out["timestamp"].to_numpy(float)))
    return out.iloc[order].reset_index(drop=True), mapping


def clip_to_genuine_scale(frame: pd.DataFrame, attackers: Iterable[str]) -> pd.DataFrame:
    """Attackers' ratings clipped to the [min, max] of everyone else's (what a validating stream would accept)."""
    bad = frame["user"].isin(set(attackers)).to_numpy()
    genuine = frame.loc[~bad, "rating"].dropna()
    if not bad.any() or genuine.empty:
        return frame
    out = frame.copy()
    out.loc[bad, "rating"] = out.loc[bad, "rating"].clip(float(genuine.min()), float(genuine.max()))
    return out


@dataclass
class Prepared:
    """Genuine + injected rows, anonymized and time-ordered, with {attacker: kind} (labelled ones: "labelled")."""

    frame: pd.DataFrame
    attackers: dict[str, str]
    retimed: bool
    original: dict[str, str] = field(default_factory=dict)  # opaque id -> the id it replaced


def prepare(
    ratings: pd.DataFrame,
    labels: dict[str, int] | None = None,
    inject: Iterable[AttackSpec] = (),
    seed: int = 0,
    clip: bool = True,
    plans: Iterable[AttackPlan] = (),
) -> Prepared:
    """Inject the attacks (specs planned here, `plans` decided elsewhere), clip labelled attackers to the genuine
    scale, give everyone opaque ids, time-order."""
    retime = bool(ratings["timestamp"].isna().any())
    frame, kinds = inject_attacks(ratings, list(inject), seed)
    plans = list(plans)
    if plans:
        frame, more = with_plans(frame, plans)
        kinds.update(more)
    attackers = {str(u): "labelled" for u, y in (labels or {}).items() if y == 1}
    attackers.update(kinds)
    if clip:
        frame = clip_to_genuine_scale(frame, attackers)
    frame, mapping = anonymize(frame, seed, retime)
    original = {new: old for old, new in mapping.items()}
    return Prepared(frame, {mapping[u]: k for u, k in attackers.items() if u in mapping}, retime, original)


@dataclass
class Replay:
    """Per-event facts recorded at each batch close, the final verdicts, and the detector's time."""

    users: np.ndarray  # user id of each event (time order)
    ts: np.ndarray
    batch: np.ndarray  # batch index of each event
    flagged_at_close: np.ndarray  # bool: user flagged when the event's batch closed
    score_at_close: np.ndarray
    events_at_close: np.ndarray  # the user's events so far when the batch closed
    age_at_close: np.ndarray  # seconds from the user's first event to the batch's last event
    lenient_at_close: np.ndarray  # bool: user lenient-suspicious at close
    close_ts: np.ndarray  # per batch: ts of its last event
    final_flagged: set
    final_scores: dict
    update_s: float
    flush_s: float
    final_s: float
    swarm_at_close: np.ndarray | None = None  # bool: user marked as a newcomer of a swarmed item at close

    def us_per_event(self) -> dict:
        """Cost per event: the streaming path (update + per-batch flush), its parts, and the final full rescore."""
        n = max(len(self.users), 1)
        return {
            "us_per_event": 1e6 * (self.update_s + self.flush_s) / n,
            "update_us": 1e6 * self.update_s / n,
            "flush_us": 1e6 * self.flush_s / n,
            "final_full_s": self.final_s,
        }


def replay(frame: pd.DataFrame, detector: FraudDetector, batch: int = 500, final_full: bool = True) -> Replay:
    """Feed rows in time order, `flush()` after every `batch` events, record flags at each close."""
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(float)))
    types = frame["type"].to_numpy() if "type" in frame else np.full(len(frame), "rating")
    ul = frame["user"].to_numpy()[order].tolist()
    il = frame["item"].to_numpy()[order].tolist()
    kl = types[order].tolist()
    vl = frame["rating"].to_numpy(float)[order].tolist()
    tl = frame["timestamp"].to_numpy(float)[order].tolist()
    n = len(order)
    flagged, lenient, swarm = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    score, age = np.zeros(n), np.zeros(n)
    count_at = np.zeros(n, np.int64)
    n_batches = (n + batch - 1) // batch
    close_ts = np.zeros(n_batches)
    seen: dict[str, int] = {}
    first: dict[str, float] = {}
    t_update = t_flush = 0.0
    update = detector.update
    for b in range(n_batches):
        lo, hi = b * batch, min(n, (b + 1) * batch)
        t0 = time.perf_counter()
        for k in range(lo, hi):
            v = vl[k]
            update(ul[k], il[k], kl[k], tl[k], None if v != v else v)
        t1 = time.perf_counter()
        detector.flush()
        t_update += t1 - t0
        t_flush += time.perf_counter() - t1
        close_ts[b] = tl[hi - 1]
        for k in range(lo, hi):
            u = ul[k]
            seen[u] = seen.get(u, 0) + 1
            first.setdefault(u, tl[k])
        status: dict[str, tuple] = {}
        for k in range(lo, hi):
            u = ul[k]
            if u not in status:
                v = detector.score(u)
                status[u] = (v.flagged, v.score, detector.is_lenient(u), detector.swarm_of(u) is not None)
            flagged[k], score[k], lenient[k], swarm[k] = status[u]
            count_at[k] = seen[u]
            age[k] = tl[hi - 1] - first[u]
    t3 = time.perf_counter()
    if final_full:
        detector.flush(full=True)
    t_final = time.perf_counter() - t3
    verdicts = {u: detector.score(u) for u in sorted(seen)}
    return Replay(
        np.array(ul, dtype=object),
        np.array(tl, float),
        np.arange(n) // batch,
        flagged,
        score,
        count_at,
        age,
        lenient,
        close_ts,
        {u for u, v in verdicts.items() if v.flagged},
        {u: float(v.score) for u, v in verdicts.items()},
        t_update,
        t_flush,
        t_final,
        swarm,
    )


def _finite(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x, 4)


def streaming_metrics(rep: Replay, attackers: Iterable[str]) -> dict:
    """Flags as they stood at each batch close: pair precision / recall, events flagged in time, time to flag.

    Medians of time to flag count attackers never flagged at any close as infinitely late (so the
    median is null when more than half were never flagged in the stream).
    """
    bad = set(attackers)
    users = rep.users.tolist()
    y = np.array([u in bad for u in users], bool)
    f = rep.flagged_at_close
    pair = {}  # (user, batch) -> (attacker, flagged): a user's state is the same for all its events of a batch
    for k, (u, b) in enumerate(zip(users, rep.batch.tolist())):
        pair.setdefault((u, b), (y[k], f[k]))
    py = np.array([a for a, _ in pair.values()], bool)
    pf = np.array([b for _, b in pair.values()], bool)
    tp, fp, fn = int((py & pf).sum()), int((~py & pf).sum()), int((py & ~pf).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    first_k: dict[str, int] = {}
    hit_k: dict[str, int] = {}
    for k, u in enumerate(users):
        if y[k]:
            first_k.setdefault(u, k)
            if f[k] and u not in hit_k:
                hit_k[u] = k
    events_to_flag = [float(rep.events_at_close[hit_k[u]]) if u in hit_k else math.inf for u in first_k]
    seconds_to_flag = [
        float(rep.close_ts[rep.batch[hit_k[u]]] - rep.ts[first_k[u]]) if u in hit_k else math.inf for u in first_k
    ]
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
        "attacker_events_flagged_at_close": round(float(f[y].mean()), 4) if y.any() else 0.0,
        "genuine_events_flagged_at_close": round(float(f[~y].mean()), 5) if (~y).any() else 0.0,
        "median_events_to_flag": _finite(float(np.median(events_to_flag))) if events_to_flag else None,
        "median_seconds_to_flag": _finite(float(np.median(seconds_to_flag))) if seconds_to_flag else None,
        "attackers_never_flagged": len(first_k) - len(hit_k),
    }


def final_trust(policy: TrustPolicy, detector: FraudDetector, users: Iterable[str]) -> dict[str, bool]:
    """user -> whether its events may train at the end of the replay."""
    return {u: gate(policy, detector, u)[0] for u in users}


def score_replay(detector: FraudDetector, rep: Replay, attackers: dict[str, str], policy: TrustPolicy) -> dict:
    """End-of-replay figures at the top level, plus `streaming` and the trust gate's shares (`trust_gate`)."""
    users = sorted(rep.final_scores)
    out = detection_scores(rep.final_flagged, users, attackers)
    out["streaming"] = streaming_metrics(rep, attackers)
    gate = gate_shares(policy, rep, attackers, final_trust(policy, detector, users))
    out["trust_gate"] = {k: _finite(v) for k, v in gate.items()}
    out["events"] = len(rep.users)
    return out


def evaluate(
    ratings: pd.DataFrame,
    labels: dict[str, int] | None = None,
    inject: Iterable[AttackSpec] = (),
    seed: int = 0,
    config: DetectorConfig | None = None,
    flush_every: int = 500,
    folds: int | None = None,
    baselines: bool = False,
    policy: TrustPolicy | None = None,
) -> dict:
    """Prepare, replay and score: end-of-replay figures at the top level, `streaming`, `trust_gate`,
    with `baselines` RDMA / DegSim alone, and with `folds` the supervised model's k-fold figures."""
    data = prepare(ratings, labels, list(inject), seed)
    detector = FraudDetector(config)
    rep = replay(data.frame, detector, flush_every)
    out = score_replay(detector, rep, data.attackers, policy or TrustPolicy())
    out["flush_every"] = flush_every
    out["retimed"] = data.retimed
    if baselines:
        from streams.fraud.baselines import baseline_scores

        out["baselines"] = baseline_scores(data.frame, data.attackers)
    if folds:
        from streams.fraud.supervised import cross_validate, user_features

        names, x = user_features(detector, sorted(rep.final_scores))
        y = np.array([u in data.attackers for u in names], bool)
        cv = cross_validate(x, y, folds, seed)
        out["supervised"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cv.items() if k != "proba"}
        out["supervised"]["folds"] = folds
    return out
