"""The streaming shilling / click-farm detector: O(1) `update` per event, `flush` per batch, `score` a user.

Four kinds of evidence, none of them from timing (features.py has the statistics, targets.py the
group evidence, decision.py the rule):
- selection: the share of the profile that looks drawn uniformly from the catalogue instead of by
  popularity (lam) and its significance (T);
- similarity: a low DegSim (mean Jaccard to the k nearest users), robust z against the population;
- consensus: the correlation with leave-one-out item means, two-sided robust z (too average, or
  ignores the consensus);
- targets: the user took the extreme action (top / bottom rating, purchase) on an item that
  suspicious accounts push together (a campaign) or that most of its visitors buy (a purchase target).

Apart from the verdicts, for the trust gate: swarmed items (targets.py), whose audience holds far
more newcomer accounts than items of the same popularity, and a mark on each account that is a
newcomer on one at a flush (`swarm_of`). Both stay: a campaign does not end when its accounts stop
being newcomers (which is what ends the swarm statistic), and the gate asks a marked account for
more events.

State: per user (`UserState`), per item (`ItemTable` sums) and population (scale, the selection
null, similarity / consensus medians and scales, the lenient set, the targets, the swarms), the population
state re-derived at `flush`. Vocabulary: `update` → `flush` → `score` → `snapshot` / `restore`
(and `user_state` / `from_users` for per-user checkpoints). It never reads the clock (timestamps
only feed the account age kept for the trust gate), never sees labels, and must never import
faust, kafka, mlflow or prometheus_client.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator

import numpy as np

from streams.fraud.config import DetectorConfig
from streams.fraud.decision import decide, is_lenient, margins, robust_fit
from streams.fraud.features import (
    SelectionNull,
    consensus_corr,
    degsim,
    item_llr,
    selection_evidence,
    selection_null,
)
from streams.fraud.state import ItemTable, UserState
from streams.fraud.targets import campaign_targets, purchase_targets, swarmed_items
from streams.fraud.verdict import DETECTOR_VERSION, Verdict

__all__ = ["DETECTOR_VERSION", "DetectorConfig", "Verdict", "FraudDetector"]

NAN = float("nan")


class FraudDetector:
    """Unsupervised detector over (user, item, kind, ts, value) events; kind: rating | click | purchase."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self.threshold = self.config.threshold
        self.items = ItemTable()
        self.users: dict[str, UserState] = {}
        self.uindex: dict[str, int] = {}
        self.uids: list[str] = []
        self.sizes = np.zeros(1024)
        self.degs = np.full(1024, NAN)
        self.cons = np.full(1024, NAN)
        self.scale = [math.inf, -math.inf]
        self.total = 0
        self.events = 0
        self.null: SelectionNull | None = None
        self.null_total = 0
        self.sim_pop = (0.0, 1e-3)
        self.cons_pop = (0.0, 0.05)
        self.lenient: dict[str, None] = {}
        self.targets: dict[str, list] = {}  # "item|direction" -> [k, m, z, kind]; kind "lenient" | "purchase"
        self.buy_candidates: dict[str, None] = {}  # items with >= target_min distinct buyers (derived)
        self.swarms: dict[str, None] = {}  # items found swarmed by newcomers (they stay watched)
        # raters of each watched item already looked at: raters only grow, and one who was not a
        # newcomer when looked at never becomes one, so each (item, rater) is looked at once
        self.swarm_scanned: dict[str, int] = {}
        self.dirty: dict[str, None] = {}
        self.rotation = 0
        self.rotation_credit = 0.0  # users owed to the rotation: a fraction carries to the next flush
        self.flushed_events = 0  # `events` at the last incremental flush
        self.flushes = 0

    # ---- per event ---------------------------------------------------------------------------
    def update(self, user_id: str, item_id: str, kind: str, ts: float, value: float | None = None) -> Verdict | None:
        """Fold one event in (O(1)); the user's verdict if the user is flagged now (so the caller may hold it)."""
        self.events += 1
        u = self.users.get(user_id)
        if u is None:
            u = self.users[user_id] = UserState(ts)
            self._add_user(user_id)
        u.n_events += 1
        if u.n_events == self.config.newcomer_events:  # no longer a newcomer: its items count one newcomer less
            for item in u.items:
                self.items.newcomers[self.items.index[item]] -= 1
        if ts > u.last_ts:
            u.last_ts = ts
        if ts < u.first_ts:
            u.first_ts = ts
        k = self.items.slot(item_id)
        old = u.items.get(item_id)
        if old is None:
            old = NAN
            u.items[item_id] = NAN
            me = self.uindex[user_id]
            self.items.arr["actors"][k] += 1
            self.items.raters[k].append(me)
            if u.n_events < self.config.newcomer_events:
                self.items.newcomers[k] += 1
            self.sizes[me] += 1
            self.total += 1
        if kind == "rating" and value is not None:
            v = float(value)
            self.items.rate(k, old, v)
            u.items[item_id] = v
            if v < self.scale[0]:
                self.scale[0] = v
            if v > self.scale[1]:
                self.scale[1] = v
        elif kind == "purchase":
            if item_id not in u.bought:
                self.items.arr["buyers"][k] += 1
                if self.items.arr["buyers"][k] >= self.config.target_min:
                    self.buy_candidates[item_id] = None
            u.bought[item_id] = u.bought.get(item_id, 0) + 1
        self.dirty[user_id] = None
        return self._verdict(user_id, u) if u.flagged else None

    def _add_user(self, user_id: str) -> None:
        self.uindex[user_id] = len(self.uids)
        self.uids.append(user_id)
        if len(self.uids) > len(self.sizes):
            grow = len(self.sizes)
            self.sizes = np.concatenate([self.sizes, np.zeros(grow)])
            self.degs = np.concatenate([self.degs, np.full(grow, NAN)])
            self.cons = np.concatenate([self.cons, np.full(grow, NAN)])

    # ---- per batch ---------------------------------------------------------------------------
    def bounds(self) -> tuple[float, float]:
        """The rating scale in force: the configured one, else the observed min / max (NaN before any rating)."""
        if self.config.rating_scale is not None:
            return self.config.rating_scale
        return (self.scale[0], self.scale[1]) if self.scale[0] <= self.scale[1] else (NAN, NAN)

    def _profile_feats(self, uid: str, u: UserState, ell: np.ndarray, g_mean: float) -> dict[str, float]:
        """Raw profile features of one user (O(profile + its items' raters)); also refreshes its extremes."""
        items = self.items
        idx = np.fromiter(map(items.index.__getitem__, u.items), dtype=np.int64, count=len(u.items))
        size = len(idx)
        me = self.uindex[uid]
        feats = {"size": float(size), "mean_llr": float(ell[idx].sum() / size)}  # = mean(), without its wrapper
        flat = items.raters_of(idx.tolist())
        n_users = len(self.uids)
        if n_users <= 8 * len(flat):  # dense enough: one bincount over all users
            counts = np.bincount(flat, minlength=n_users)
            counts[me] = 0
            nz = (counts > 0).nonzero()[0]  # a bool mask's nonzero is 3x an int array's
            ov = counts[nz].astype(float)
        else:
            nz, ov = np.unique(flat, return_counts=True)
            keep = nz != me
            nz, ov = nz[keep], ov[keep].astype(float)
        feats["degsim"] = degsim(ov, size, self.sizes[nz], self.config.neighbours)
        self.degs[me] = feats["degsim"]
        vals = np.fromiter(u.items.values(), dtype=float, count=size)
        rated = vals == vals
        if np.count_nonzero(rated) >= self.config.min_profile:
            r_idx = idx[rated]
            feats["cons"] = consensus_corr(vals[rated], items.view("r_sum")[r_idx], items.view("r_n")[r_idx], g_mean)
            self.cons[me] = feats["cons"]
        lo, hi = self.bounds()
        ext = [[i, 1] for i, v in u.items.items() if v == hi]
        ext += [[i, -1] for i, v in u.items.items() if v == lo and lo < hi]
        ext += [[i, 1] for i in u.bought if u.items.get(i) != hi]
        u.extremes = ext
        return feats

    def _evidence(self, uids: list[str]) -> dict[str, dict[str, float]]:
        """Directed evidence of scored users, vectorised: lam, t, sim_z (low DegSim), cons_z (two-sided)."""
        uids = [uid for uid in uids if self.users[uid].feats.get("size", 0) >= self.config.min_profile]
        if not uids or self.null is None:
            return {}
        feats = [self.users[uid].feats for uid in uids]
        size = np.array([f["size"] for f in feats])
        lam, t = selection_evidence(np.array([f["mean_llr"] for f in feats]), size, self.null)
        sim_z = (self.sim_pop[0] - np.array([f["degsim"] for f in feats])) / self.sim_pop[1]
        cons = np.array([f.get("cons", NAN) for f in feats])
        cons_z = (cons - self.cons_pop[0]) / self.cons_pop[1]
        out = {}
        for k, uid in enumerate(uids):
            ev = {"lam": float(lam[k]), "t": float(t[k]), "sim_z": float(sim_z[k])}
            if cons_z[k] == cons_z[k]:
                ev["cons_z"] = float(cons_z[k])
            out[uid] = ev
        return out

    def _due(self, full: bool) -> list[str]:
        """Users to rescore: all (full), else touched users whose profile grew ×`growth`, plus a rotating slice."""
        cfg, users = self.config, self.users
        if full:
            return [uid for uid in self.uids if len(users[uid].items) >= cfg.min_profile]
        due = [
            uid
            for uid in self.dirty
            if len(users[uid].items) >= cfg.min_profile and len(users[uid].items) >= cfg.growth * users[uid].scored_size
        ]
        # The rotation refreshes `refresh_share` of the users per flush, but never more than that
        # per `refresh_events` events folded: a worker that flushes after every small take spent
        # most of its detector time rescoring quiet users (50 of the 56 users rescored per flush
        # of 300 simulated events). A flush of `refresh_events` or more rotates as before.
        n_users = len(self.uids)
        slice_size = math.ceil(cfg.refresh_share * n_users)
        folded = self.events - self.flushed_events
        if slice_size > cfg.refresh_max_per_event * cfg.refresh_events:  # many users: the cap holds
            self.rotation_credit += cfg.refresh_max_per_event * folded
        else:
            self.rotation_credit += slice_size * folded / cfg.refresh_events
        self.flushed_events = self.events
        n_rot = min(int(self.rotation_credit), slice_size)
        self.rotation_credit = min(self.rotation_credit - n_rot, 1.0)
        picked = set(due)
        for k in range(n_rot):
            uid = self.uids[(self.rotation + k) % n_users]
            if uid not in picked and len(users[uid].items) >= cfg.min_profile:
                due.append(uid)
                picked.add(uid)
        self.rotation = (self.rotation + n_rot) % n_users
        return due

    def _fit_population(self) -> None:
        """Refit the DegSim and consensus medians / scales over users with long enough profiles."""
        cfg, n_users = self.config, len(self.uids)
        sizes = self.sizes[:n_users]
        fit = sizes >= cfg.pop_min_profile
        if fit.sum() < 30:
            fit = sizes >= cfg.min_profile
        self.sim_pop = robust_fit(self.degs[:n_users][fit], 1e-3, lower_tail=True)
        self.cons_pop = robust_fit(self.cons[:n_users][fit], 0.05)

    def _find_targets(self) -> None:
        lenient_idx = np.array(sorted(self.uindex[uid] for uid in self.lenient), dtype=np.int64)
        extremes = (self.users[uid].extremes for uid in self.lenient)
        targets = campaign_targets(self.config, self.items, extremes, lenient_idx, self.bounds())
        targets.update(purchase_targets(self.config, self.items, self.buy_candidates))
        self.targets = targets

    def _find_swarms(self) -> None:
        """Watch the items newcomers swarm now; mark the accounts that are newcomers on any watched item.

        Judged at the flush, like the trust gate: an account that touched a watched item and has
        grown past `newcomer_events` since the last flush is not marked. Only the raters a watched
        item gained since the last flush are looked at (`swarm_scanned`).
        """
        items, cfg = self.items, self.config
        found = swarmed_items(cfg, items.view("actors"), np.asarray(items.newcomers, float))
        self.swarms.update(dict.fromkeys(items.ids[k] for k in found))
        for item in self.swarms:
            raters = items.raters[items.index[item]]
            for r in raters[self.swarm_scanned.get(item, 0) :]:
                u = self.users[self.uids[r]]
                if u.swarm is None and u.n_events < cfg.newcomer_events:
                    u.swarm = item
            self.swarm_scanned[item] = len(raters)

    def flush(self, full: bool = False) -> list[Verdict]:
        """Rescore grown users (all if `full`) and a rotating slice, refit population statistics, find targets.

        Returns the verdicts that crossed the threshold or moved by at least `material` since the user's last
        reported verdict.
        """
        steps = self.flush_steps(full)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def flush_steps(self, full: bool = False, pause_every: int = 64) -> Generator[None, None, list[Verdict]]:
        """`flush` in steps: it yields after every `pause_every` users' features (and between its
        later stages) and returns `flush`'s verdicts.

        A full flush of 40,000 users takes seconds; a caller on an event loop lets the loop run
        between steps (the state must not change meanwhile: the caller holds its lock).
        """
        cfg = self.config
        self.flushes += 1
        if not len(self.items):
            return []
        counts = self.items.view("actors")
        if self.null is None or full or self.total >= cfg.null_growth * self.null_total:
            self.null = selection_null(counts, float(self.sizes[: len(self.uids)].max()))
            self.null_total = self.total
        ell = item_llr(counts)
        r_n, r_sum = self.items.view("r_n"), self.items.view("r_sum")
        g_mean = float(r_sum.sum() / r_n.sum()) if r_n.sum() else 0.0
        due = self._due(full)
        self.dirty = {}
        for n, uid in enumerate(due, 1):
            u = self.users[uid]
            u.feats = self._profile_feats(uid, u, ell, g_mean)
            u.scored_size = len(u.items)
            if n % pause_every == 0:
                yield
        self._fit_population()
        reeval = list(dict.fromkeys(itertools.chain(due, self.lenient)))
        yield
        evidence = self._evidence(reeval)
        yield
        for n, uid in enumerate(reeval, 1):
            lenient = is_lenient(margins(evidence.get(uid, {}), cfg))
            self.users[uid].lenient = lenient
            if lenient:
                self.lenient[uid] = None
            else:
                self.lenient.pop(uid, None)
            if n % (16 * pause_every) == 0:
                yield
        self._find_targets()
        self._find_swarms()
        for key, (_, _, _, kind) in self.targets.items():  # buyers of a purchase target are rescored now
            if kind == "purchase":
                item = key.rsplit("|", 1)[0]
                for r in self.items.raters[self.items.index[item]]:
                    uid = self.uids[r]
                    if item in self.users[uid].bought and uid not in evidence:
                        reeval.append(uid)
                        evidence.update(self._evidence([uid]))
        out = []
        for n, uid in enumerate(dict.fromkeys(reeval), 1):
            v = self._rescore(uid, evidence.get(uid, {}))
            if v is not None:
                out.append(v)
            if n % (16 * pause_every) == 0:  # a rescore costs a fraction of a feature update
                yield
        return out

    def _rescore(self, uid: str, ev: dict[str, float]) -> Verdict | None:
        u, targets = self.users[uid], self.targets
        m = margins(ev, self.config)
        campaigns = []
        if u.lenient:  # a campaign target counts only for users who are lenient-suspicious themselves
            keys = (f"{i}|{d}" for i, d in u.extremes)
            campaigns = [key for key in keys if (t := targets.get(key)) is not None and t[3] == "lenient"]
        purchases = []
        for item in u.bought:
            t = targets.get(f"{item}|1")
            if t is not None and t[3] == "purchase":
                purchases.append((item, t[0] / t[1]))
        score, reasons = decide(m, ev.get("cons_z", 0.0), campaigns, purchases, self.config)
        flagged = score >= self.threshold
        changed = flagged != u.flagged or abs(score - u.reported) >= self.config.material
        u.score, u.flagged, u.reasons = score, flagged, reasons
        u.feats.update(ev)
        if not changed:
            return None
        u.reported = score
        return self._verdict(uid, u)

    # ---- queries -----------------------------------------------------------------------------
    def _verdict(self, uid: str, u: UserState) -> Verdict:
        return Verdict(uid, u.score, u.flagged, tuple(u.reasons), dict(u.feats))

    def score(self, user_id: str) -> Verdict:
        """The user's verdict as of the last flush (score 0 for an unknown user)."""
        u = self.users.get(user_id)
        return Verdict(user_id, 0.0, False, ()) if u is None else self._verdict(user_id, u)

    def verdicts(self) -> dict[str, Verdict]:
        """Current verdicts of every user seen."""
        return {uid: self._verdict(uid, u) for uid, u in self.users.items()}

    def flagged(self) -> set[str]:
        """Users flagged now."""
        return {uid for uid, u in self.users.items() if u.flagged}

    def is_lenient(self, user_id: str) -> bool:
        """Whether the user is in the lenient-suspicious set (weaker than flagged; for trust gating)."""
        return user_id in self.lenient

    def account(self, user_id: str) -> tuple[int, float, float]:
        """(events, first ts, last ts) of a user, for trust gating; (0, nan, nan) if unknown."""
        u = self.users.get(user_id)
        return (0, NAN, NAN) if u is None else (u.n_events, u.first_ts, u.last_ts)

    def swarm_of(self, user_id: str) -> str | None:
        """The swarmed item the user touched as a newcomer (None: none), for trust gating."""
        u = self.users.get(user_id)
        return None if u is None else u.swarm

    def events_of(self, user_id: str) -> int:
        """Events folded in for the user (0 if unknown)."""
        u = self.users.get(user_id)
        return 0 if u is None else u.n_events

    # ---- state -------------------------------------------------------------------------------
    def user_state(self, user_id: str) -> dict | None:
        """The user's own state as a JSON-able dict (None if unknown): the per-user slice of `snapshot`."""
        u = self.users.get(user_id)
        return None if u is None else u.to_dict()

    def snapshot(self) -> dict:
        """The whole state as JSON-able dicts and lists (derived indexes are rebuilt by `restore`)."""
        return {
            "version": DETECTOR_VERSION,
            "events": self.events,
            "total": self.total,
            "flushes": self.flushes,
            "rotation": self.rotation,
            "rotation_credit": self.rotation_credit,
            "flushed_events": self.flushed_events,
            "scale": [None if not math.isfinite(x) else x for x in self.scale],
            "null": None if self.null is None else self.null.to_dict(),
            "null_total": self.null_total,
            "sim_pop": list(self.sim_pop),
            "cons_pop": list(self.cons_pop),
            "lenient": list(self.lenient),
            "targets": {k: list(v) for k, v in self.targets.items()},
            "swarms": list(self.swarms),
            "dirty": list(self.dirty),
            "items": self.items.to_dict(),
            "users": {uid: self.users[uid].to_dict() for uid in self.uids},
        }

    @classmethod
    def restore(cls, snap: dict, config: DetectorConfig | None = None) -> FraudDetector:
        """Rebuild a detector from `snapshot()` output; it then gives the same verdicts as the original."""
        if snap.get("version") != DETECTOR_VERSION:
            raise ValueError(f"snapshot of {snap.get('version')!r}, this is {DETECTOR_VERSION}")
        det = cls(config)
        det.events, det.total, det.flushes = snap["events"], snap["total"], snap["flushes"]
        det.rotation = snap["rotation"]
        det.rotation_credit = snap.get("rotation_credit", 0.0)
        det.flushed_events = snap.get("flushed_events", det.events)
        lo, hi = snap["scale"]
        det.scale = [math.inf if lo is None else lo, -math.inf if hi is None else hi]
        det.null = None if snap["null"] is None else SelectionNull.from_dict(snap["null"])
        det.null_total = snap["null_total"]
        det.sim_pop = tuple(snap["sim_pop"])
        det.cons_pop = tuple(snap["cons_pop"])
        det.lenient = dict.fromkeys(snap["lenient"])
        det.targets = {k: list(v) for k, v in snap["targets"].items()}
        det.swarms = dict.fromkeys(snap.get("swarms", ()))
        det.dirty = dict.fromkeys(snap["dirty"])
        det.items = ItemTable.from_dict(snap["items"])
        for uid, d in snap["users"].items():
            det.users[uid] = UserState.from_dict(d)
            det._add_user(uid)
        det._derive()
        return det

    @classmethod
    def from_users(cls, states: dict[str, dict], config: DetectorConfig | None = None) -> FraudDetector:
        """Rebuild a detector from per-user states alone (`user_state` of each user).

        The item table is a function of the profiles, so it is recomputed; so are the lenient set
        (from each user's last verdict), the watched swarm items (from the users' marks), the targets
        and the DegSim / consensus fits. The selection
        null is refitted at the next `flush`. Verdicts are those of the states; after the next
        `flush(full=True)` they equal those of a detector that never restarted.
        """
        det = cls(config)
        items = det.items
        for uid, d in states.items():
            u = det.users[uid] = UserState.from_dict(d)
            det._add_user(uid)
            det.events += u.n_events
            det.total += len(u.items)
            for item, v in u.items.items():
                k = items.slot(item)
                items.arr["actors"][k] += 1
                if v == v:
                    items.rate(k, NAN, v)
                    det.scale = [min(det.scale[0], v), max(det.scale[1], v)]
                if item in u.bought:
                    items.arr["buyers"][k] += 1
            if u.lenient:
                det.lenient[uid] = None
            if u.swarm is not None:
                det.swarms[u.swarm] = None
        det._derive()
        det._fit_population()
        det._find_targets()
        return det

    def _derive(self) -> None:
        """Rebuild the derived indexes from users and items: rater lists, newcomer counts, sizes, last DegSim /
        consensus."""
        newcomer_events = self.config.newcomer_events
        for uid in self.uids:
            u, me = self.users[uid], self.uindex[uid]
            for item in u.items:
                k = self.items.index[item]
                self.items.raters[k].append(me)
                if u.n_events < newcomer_events:
                    self.items.newcomers[k] += 1
            self.sizes[me] = len(u.items)
            self.degs[me] = u.feats.get("degsim", NAN)
            self.cons[me] = u.feats.get("cons", NAN)
        for k, item in enumerate(self.items.ids):
            if self.items.arr["buyers"][k] >= self.config.target_min:
                self.buy_candidates[item] = None
