"""The streaming fraud detector: `update` with one event in O(1), `flush` once per batch, `score` a user.

State is plain dicts (see `snapshot`) so it can live in a changelog-backed table. Profile
features are recomputed for a user on a geometric schedule of its event count and for every
user touched since the last `flush`; `flush(full=True)` rescores everyone against the final
population statistics, which makes the scores after a replay deterministic. It must never
import faust, kafka or prometheus, read the clock or look at labels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from streams.fraud.combiner import CombinerConfig, combine, fit_population, own_evidence, robust_z
from streams.fraud.features import profile_features
from streams.fraud.minhash import LSHIndex, MinHasher
from streams.fraud.state import UserState

__all__ = ["DETECTOR_VERSION", "DetectorConfig", "Verdict", "FraudDetector"]

DETECTOR_VERSION = "fraud-1.0"


@dataclass(frozen=True)
class DetectorConfig:
    """Tunables of the detector; `combiner` holds the score's cut-offs."""

    threshold: float = 0.5
    min_profile: int = 5  # ratings before profile features count
    min_events: int = 5  # events before behaviour features count
    half_life_s: float = 300.0
    window_s: float = 7 * 86_400.0  # co-target window (tumbling)
    growth: float = 1.5  # update() rescores a user when its event count grows by this factor
    flush_growth: float = 1.25  # flush() rescores a touched user when its count grew by this factor
    num_perm: int = 128
    neighbours: int = 10
    material: float = 0.1  # score change that makes update/flush report a verdict
    seed: int = 1
    combiner: CombinerConfig = field(default_factory=CombinerConfig)


@dataclass(frozen=True)
class Verdict:
    """A user's current suspicion: score in [0, 1], whether it crosses the threshold, and why."""

    user_id: str
    score: float
    flagged: bool
    reasons: tuple[str, ...]
    features: dict[str, float]
    version: str = DETECTOR_VERSION

    def to_dict(self) -> dict:
        """A JSON-able dict of the verdict."""
        return {**asdict(self), "reasons": list(self.reasons)}


class FraudDetector:
    """Shilling / click-fraud detector over a stream of (user, item, kind, ts, value) events."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self.threshold = self.config.threshold
        self._users: dict[str, UserState] = {}
        self._items: dict[str, tuple[int, float]] = {}  # item -> (count, mean rating)
        self._acts: dict[str, dict[int, list[str]]] = {}  # item -> bucket -> users acting on it
        self._scale = [math.inf, -math.inf]  # observed rating min, max
        self._len = [0, 0.0, 0.0]  # users with ratings, Σ N_u, Σ N_u²
        self._population: dict[str, list[float]] = {}
        self._p_lenient = 0.05
        self._dirty: dict[str, None] = {}
        self._events = 0
        self._init_derived()

    def _init_derived(self) -> None:
        self._index: dict[str, int] = {}
        self._hasher = MinHasher(self.config.num_perm, self.config.seed)
        self._lsh = LSHIndex(self.config.num_perm)
        self._group_cache: dict[tuple, tuple[int, int]] = {}

    # ---- per event -------------------------------------------------------------------------
    def update(self, user_id: str, item_id: str, kind: str, ts: float, value: float | None = None) -> Verdict | None:
        """Fold one event into the state; return the user's verdict if it was rescored and changed materially."""
        self._events += 1
        u = self._users.get(user_id)
        if u is None:
            u = self._users[user_id] = UserState(ts)
        u.observe(ts, self.config.half_life_s)
        if kind == "rating" and value is not None:
            self._rate(u, user_id, item_id, float(value), ts)
        elif kind == "purchase":
            u.purchases += 1
            u.bought[item_id] = u.bought.get(item_id, 0) + 1
            u.click_items[item_id] = u.click_items.get(item_id, 0) + 1
            self._act(u, user_id, item_id, ts)
        else:
            u.clicks += 1
            u.click_items[item_id] = u.click_items.get(item_id, 0) + 1
        self._dirty[user_id] = None
        if u.n >= u.due:
            u.due = max(u.n + 1, int(u.n * self.config.growth))
            return self._rescore(user_id, u, with_degsim=False, index=False)
        return None

    def _rate(self, u: UserState, uid: str, item: str, r: float, ts: float) -> None:
        cnt, mean = self._items.get(item, (0, 0.0))
        old = u.ratings.get(item)
        if old is None:
            cnt += 1
            mean += (r - mean) / cnt
            n = len(u.ratings)
            if n == 0:
                self._len[0] += 1
            self._len[1] += 1
            self._len[2] += 2 * n + 1
        else:
            mean += (r - old) / cnt
        self._items[item] = (cnt, mean)
        u.ratings[item] = r
        if r < self._scale[0]:
            self._scale[0] = r
        if r > self._scale[1]:
            self._scale[1] = r
        self._act(u, uid, item, ts)

    def _act(self, u: UserState, uid: str, item: str, ts: float) -> None:
        bucket = int(ts // self.config.window_s)
        if u.acts.get(item) == bucket:
            return
        u.acts[item] = bucket
        self._acts.setdefault(item, {}).setdefault(bucket, []).append(uid)

    # ---- scoring ---------------------------------------------------------------------------
    def _features(self, uid: str, u: UserState, index: bool = True) -> dict[str, float]:
        cfg = self.config
        feats: dict[str, float] = {}
        if len(u.ratings) >= cfg.min_profile:
            users, total, total_sq = self._len
            mean_len = total / users if users else 0.0
            feats.update(profile_features(u.ratings, self._items, mean_len, total_sq - users * mean_len**2))
            if index:
                key = self._index.setdefault(uid, len(self._index))
                self._lsh.update(key, self._hasher.signature(u.ratings))
            if "degsim" in u.features:
                feats["degsim"] = u.features["degsim"]
        if u.n >= cfg.min_events:
            feats.update(u.behaviour())
        return feats

    def _degsim(self, uid: str) -> float | None:
        key = self._index.get(uid)
        if key is None:
            return None
        cands = self._lsh.query(key)
        sims = np.sort(self._lsh.similarity(key, cands))[::-1][: self.config.neighbours]
        return float(sims.sum() / self.config.neighbours)

    def _group(self, uid: str, u: UserState) -> dict[str, float]:
        lo, hi = self._scale
        lenient = self.config.combiner.lenient
        p = min(max(self._p_lenient, 0.01), 0.5)
        best = {"cotarget_push": 0.0, "cotarget_nuke": 0.0}
        mine = 1 if u.own >= lenient else 0
        for item, bucket in u.acts.items():
            r = u.ratings.get(item)
            if r is not None and r >= hi or item in u.bought:
                direction = "cotarget_push"
            elif r is not None and r <= lo:
                direction = "cotarget_nuke"
            else:
                continue
            key = (item, bucket, direction)
            km = self._group_cache.get(key)
            if km is None:
                k = m = 0
                for other in self._acts[item][bucket]:
                    o = self._users[other]
                    r2 = o.ratings.get(item)
                    same = (
                        (r2 is not None and r2 >= hi or item in o.bought)
                        if direction == "cotarget_push"
                        else (r2 is not None and r2 <= lo)
                    )
                    if same:
                        m += 1
                        k += o.own >= lenient
                km = self._group_cache[key] = (k, m)
            k, m = km[0] - mine, km[1] - 1
            if m >= 2:
                z = (k - m * p) / math.sqrt(m * p * (1 - p))
                if z > best[direction]:
                    best[direction] = z
        deg = u.features.get("degsim")
        if deg is not None and "degsim" in self._population:
            med, scale = self._population["degsim"]
            best["degsim_high"] = (deg - med) / scale
        return best

    def _rescore(
        self, uid: str, u: UserState, with_degsim: bool = True, features: bool = True, index: bool = True
    ) -> Verdict | None:
        if features:
            u.features = self._features(uid, u, index)
            u.scored_n = u.n
        if with_degsim and len(u.ratings) >= self.config.min_profile:
            deg = self._degsim(uid)
            if deg is not None:
                u.features["degsim"] = deg
        cfg = self.config.combiner
        z = robust_z(u.features, self._population, len(u.ratings), cfg) if self._population else {}
        u.own = own_evidence(z, cfg)
        group = self._group(uid, u) if u.own >= cfg.lenient else {}
        u.score, _, reasons = combine(z, group, cfg)
        u.reasons = reasons
        flagged_changed = (u.score >= self.threshold) != (u.emitted >= self.threshold)
        if abs(u.score - u.emitted) >= self.config.material or flagged_changed:
            u.emitted = u.score
            return self.score(uid)
        return None

    def flush(self, full: bool = False) -> list[Verdict]:
        """Rescore users touched since the last flush (everyone if `full`) against fresh population stats."""
        cfg = self.config
        if full:
            todo, self._dirty = list(self._users), {}
        else:  # a touched user is rescored once its event count grew by `flush_growth` since its last rescore
            todo = [uid for uid in self._dirty if self._users[uid].n >= self._users[uid].scored_n * cfg.flush_growth]
            for uid in todo:
                del self._dirty[uid]
        for uid in todo:  # pass 1: profile features and fresh signatures
            u = self._users[uid]
            u.features = self._features(uid, u)
            u.scored_n = u.n
        for uid in todo:  # pass 2: nearest-neighbour similarity on the refreshed index
            u = self._users[uid]
            if len(u.ratings) >= cfg.min_profile:
                deg = self._degsim(uid)
                if deg is not None:
                    u.features["degsim"] = deg
        rows = [u.features for u in self._users.values() if u.features]
        self._population = fit_population(rows)
        for uid in todo:
            u = self._users[uid]
            u.own = (
                own_evidence(robust_z(u.features, self._population, len(u.ratings), cfg.combiner), cfg.combiner)
                if u.features
                else 0.0
            )
        scored = [u.own for u in self._users.values() if u.features]
        self._p_lenient = sum(o >= cfg.combiner.lenient for o in scored) / len(scored) if scored else 0.05
        self._group_cache = {}
        out = []
        for uid in todo:
            v = self._rescore(uid, self._users[uid], with_degsim=False, features=False)
            if v is not None:
                out.append(v)
        # Users pushing an item that just became a marked target are rescored now, not at their next event.
        marked = {
            uid for key, (k, m) in self._group_cache.items() if k >= 3 for uid in self._acts[key[0]][key[1]]
        } - set(todo)
        for uid in sorted(marked):
            v = self._rescore(uid, self._users[uid], with_degsim=False, features=False)
            if v is not None:
                out.append(v)
        return out

    def score(self, user_id: str) -> Verdict:
        """The user's verdict as of its last rescore (score 0, no reasons for an unknown user)."""
        u = self._users.get(user_id)
        if u is None:
            return Verdict(user_id, 0.0, False, (), {})
        return Verdict(user_id, u.score, u.score >= self.threshold, tuple(u.reasons), dict(u.features))

    def z_scores(self, user_id: str) -> dict[str, float]:
        """Directed robust z-scores of the user's features against the population (positive = suspicious)."""
        u = self._users.get(user_id)
        return (
            robust_z(u.features, self._population, len(u.ratings), self.config.combiner)
            if u is not None and self._population
            else {}
        )

    def verdicts(self) -> dict[str, Verdict]:
        """Current verdicts of every user seen."""
        return {uid: self.score(uid) for uid in self._users}

    # ---- state -------------------------------------------------------------------------------
    def events_of(self, user_id: str) -> int:
        """Events folded in for the user (0 if unknown)."""
        u = self._users.get(user_id)
        return u.n if u is not None else 0

    def user_state(self, user_id: str) -> dict | None:
        """The user's own state as a JSON-able dict (None if unknown): the per-user slice of `snapshot`."""
        u = self._users.get(user_id)
        return u.to_dict() if u is not None else None

    @classmethod
    def from_users(cls, states: dict[str, dict], config: DetectorConfig | None = None) -> FraudDetector:
        """Rebuild a detector from per-user states alone (`user_state` of each user): the aggregates are derived.

        Item counts and means, rating lengths, scale, co-target windows, population statistics and the
        LSH index are all functions of the users' states. Only the co-target windows lose something: a
        user is listed in the latest window of each item it acted on, not in earlier ones.
        """
        cfg = config or DetectorConfig()
        users = {uid: UserState.from_dict(d) for uid, d in sorted(states.items())}
        items: dict[str, list[float]] = {}
        acts: dict[str, dict[int, list[str]]] = {}
        lengths = [0, 0.0, 0.0]
        lo, hi = math.inf, -math.inf
        for uid, u in users.items():
            for item, r in u.ratings.items():
                cell = items.setdefault(item, [0, 0.0])
                cell[0] += 1
                cell[1] += r
                lo, hi = min(lo, r), max(hi, r)
            if u.ratings:
                n = len(u.ratings)
                lengths[0] += 1
                lengths[1] += n
                lengths[2] += n * n
            for item, bucket in u.acts.items():
                acts.setdefault(item, {}).setdefault(int(bucket), []).append(uid)
        scored = [u for u in users.values() if u.features]
        snap = {
            "version": DETECTOR_VERSION,
            "events": sum(u.n for u in users.values()),
            "scale": [None, None] if lo > hi else [lo, hi],
            "lengths": lengths,
            "population": fit_population([u.features for u in scored]),
            "p_lenient": (sum(u.own >= cfg.combiner.lenient for u in scored) / len(scored)) if scored else 0.05,
            "items": {i: [c, s / c] for i, (c, s) in items.items()},
            "acts": {i: [[b, us] for b, us in bs.items()] for i, bs in acts.items()},
            "dirty": [],
            "index": [uid for uid, u in users.items() if len(u.ratings) >= cfg.min_profile],
            "users": {uid: u.to_dict() for uid, u in users.items()},
        }
        return cls.restore(snap, cfg)

    def snapshot(self) -> dict:
        """The whole state as JSON-able plain dicts and lists (no signatures: they are rebuilt)."""
        return {
            "version": DETECTOR_VERSION,
            "events": self._events,
            "scale": list(self._scale) if self._users else [None, None],
            "lengths": list(self._len),
            "population": {k: list(v) for k, v in self._population.items()},
            "p_lenient": self._p_lenient,
            "items": {i: list(v) for i, v in self._items.items()},
            "acts": {i: [[b, list(us)] for b, us in bs.items()] for i, bs in self._acts.items()},
            "dirty": list(self._dirty),
            "index": list(self._index),
            "users": {uid: u.to_dict() for uid, u in self._users.items()},
        }

    @classmethod
    def restore(cls, snap: dict, config: DetectorConfig | None = None) -> FraudDetector:
        """Rebuild a detector from `snapshot()` output (signatures and the LSH index are recomputed)."""
        if snap.get("version") != DETECTOR_VERSION:
            raise ValueError(f"snapshot of {snap.get('version')!r}, this is {DETECTOR_VERSION}")
        det = cls(config)
        det._events = snap["events"]
        lo, hi = snap["scale"]
        det._scale = [math.inf if lo is None else lo, -math.inf if hi is None else hi]
        det._len = list(snap["lengths"])
        det._population = {k: list(v) for k, v in snap["population"].items()}
        det._p_lenient = snap["p_lenient"]
        det._items = {i: (int(v[0]), float(v[1])) for i, v in snap["items"].items()}
        det._acts = {i: {int(b): list(us) for b, us in bs} for i, bs in snap["acts"].items()}
        det._dirty = dict.fromkeys(snap["dirty"])
        det._users = {uid: UserState.from_dict(d) for uid, d in snap["users"].items()}
        for key, uid in enumerate(snap["index"]):
            det._index[uid] = key
            det._lsh.update(key, det._hasher.signature(det._users[uid].ratings))
        return det
