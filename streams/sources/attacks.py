"""Profile-injection and implicit-feedback attack generators, as plain event dicts.

Pure and seeded: a population summary plus an `AttackSpec` give a deterministic `AttackPlan`
whose `events()` yield dicts of the Kafka event contract and whose `labels()` yield the ground
truth separately. It must never put a label (or anything that reveals one, like an "atk" prefix)
into an event, and never touches a file, Kafka or the clock; writers live in the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "RATING_ATTACKS",
    "IMPLICIT_ATTACKS",
    "ATTACKS",
    "Population",
    "AttackSpec",
    "AttackPlan",
    "summarize",
    "plan_attack",
    "parse_inject",
]

RATING_ATTACKS = ("random", "average", "bandwagon", "segment", "reverse_bandwagon")
IMPLICIT_ATTACKS = ("click_farm", "bot")
ATTACKS = RATING_ATTACKS + IMPLICIT_ATTACKS


@dataclass(frozen=True)
class Population:
    """What an attacker knows of the genuine data: items, their stats, the rating scale, time range."""

    items: tuple[str, ...]
    counts: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    users: frozenset[str]
    global_mean: float
    global_std: float
    r_min: float
    r_max: float
    step: float
    ts_min: float
    ts_max: float


def summarize(ratings: pd.DataFrame) -> Population:
    """Summarise a `read_ratings` frame into the statistics attack models use.

    Item counts cover every interaction (clicks too); rating statistics cover rated rows only,
    and items never rated get the global mean, so click streams can be attacked as well.
    """
    rated = ratings.dropna(subset=["rating"])
    counts = ratings.groupby("item", sort=True).size()
    stats = rated.groupby("item", sort=True)["rating"].agg(["mean", "std"]).reindex(counts.index)
    values = np.unique(rated["rating"].to_numpy(float)) if len(rated) else np.array([1.0, 5.0])
    diffs = np.diff(values)
    step = float(diffs.min()) if len(diffs) else 1.0
    ts = ratings["timestamp"].dropna()
    global_mean = float(rated["rating"].mean()) if len(rated) else 3.0
    return Population(
        items=tuple(counts.index.astype(str)),
        counts=counts.to_numpy(float),
        means=stats["mean"].fillna(global_mean).to_numpy(float),
        stds=stats["std"].fillna(0.0).to_numpy(float),
        users=frozenset(ratings["user"].astype(str)),
        global_mean=global_mean,
        global_std=float(rated["rating"].std()) if len(rated) > 1 else 1.0,
        r_min=float(values.min()),
        r_max=float(values.max()),
        step=step,
        ts_min=float(ts.min()) if len(ts) else 0.0,
        ts_max=float(ts.max()) if len(ts) else 0.0,
    )


@dataclass(frozen=True)
class AttackSpec:
    """One attack: model, size (attackers / genuine users), filler size (filler / all items), targets."""

    kind: str
    attack_size: float
    filler_size: float
    targets: tuple[str, ...] = ()
    push: bool = True
    n_selected: int = 3
    start_ts: float | None = None
    span_s: float = 86_400.0
    gap_s: float = 20.0
    bot_interval_s: float = 30.0
    n_waves: int = 3
    price: float = 19.99

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise ValueError(f"unknown attack {self.kind!r}; one of {', '.join(ATTACKS)}")
        if not 0 < self.attack_size <= 10 or not 0 <= self.filler_size < 1:
            raise ValueError("attack_size must be in (0, 10], filler_size in [0, 1)")
        if self.kind == "reverse_bandwagon":  # a reverse bandwagon is a nuke by definition
            object.__setattr__(self, "push", False)


def parse_inject(text: str, **overrides) -> AttackSpec:
    """Parse `TYPE:ATTACK_SIZE:FILLER_SIZE` (e.g. `average:0.05:0.03`) into an AttackSpec."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"--inject wants TYPE:ATTACK_SIZE:FILLER_SIZE, got {text!r}")
    kind = parts[0].replace("-", "_")
    if kind == "nuke":
        kind, overrides = "reverse_bandwagon", {**overrides, "push": False}
    return AttackSpec(kind, float(parts[1]), float(parts[2]), **overrides)


@dataclass
class AttackPlan:
    """A fully decided attack: who rates what, how and when. `events()` and `labels()` read it."""

    spec: AttackSpec
    users: list[str]
    targets: list[str]
    profiles: list[list[tuple[str, str, float | None]]]  # per user: (item, type, value)
    times: list[list[float]]
    event_ids: list[list[str]] = field(default_factory=list)

    def events(self) -> Iterator[dict]:
        """Yield the attack's events (the Kafka contract), user by user, each in time order."""
        for u, user in enumerate(self.users):
            session = f"s{user[1:]}"
            for (item, kind, value), ts, eid in zip(self.profiles[u], self.times[u], self.event_ids[u]):
                yield {
                    "event_id": eid,
                    "user_id": user,
                    "item_id": item,
                    "type": kind,
                    "ts": ts,
                    "value": value,
                    "session_id": session,
                }

    def labels(self) -> Iterator[tuple[str, int, str]]:
        """Yield (user_id, 1, attack kind) for every injected account."""
        for user in self.users:
            yield user, 1, self.spec.kind


def _new_ids(rng: np.random.Generator, n: int, prefix: str, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        cand = prefix + f"{int(rng.integers(0, 2**40)):010x}"
        if cand not in taken:
            taken.add(cand)
            out.append(cand)
    return out


def _clip(pop: Population, x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x / pop.step) * pop.step, pop.r_min, pop.r_max)


def _pick_targets(spec: AttackSpec, pop: Population, rng: np.random.Generator) -> list[str]:
    if spec.targets:
        return list(spec.targets)
    # Classic set-up: push an unpopular, poorly rated item; nuke a liked one (both with some ratings).
    ok = pop.counts >= 5
    if spec.push:
        ok &= pop.means <= np.median(pop.means[ok]) if ok.any() else ok
    pool = np.flatnonzero(ok) if ok.any() else np.arange(len(pop.items))
    return [pop.items[int(rng.choice(pool))]]


def _selected(spec: AttackSpec, pop: Population, exclude: set[int], rng: np.random.Generator) -> list[int]:
    k = spec.n_selected
    if spec.kind == "bandwagon":
        order = np.argsort(-pop.counts, kind="stable")
    elif spec.kind == "reverse_bandwagon":
        order = np.argsort(pop.means + 1e3 * (pop.counts < 20), kind="stable")
    elif spec.kind == "segment":
        # Without genre data, the segment is the popular, well-liked items a target's fans also like.
        liked = np.flatnonzero((pop.means >= np.quantile(pop.means, 0.75)) & (pop.counts >= np.median(pop.counts)))
        order = rng.permutation(liked) if len(liked) else np.argsort(-pop.counts, kind="stable")
    else:
        return []
    return [int(i) for i in order if int(i) not in exclude][:k]


def _rating_profile(spec, pop, rng, target_idx, sel, n_filler):
    hi, lo = pop.r_max, pop.r_min
    tval = hi if spec.push else lo
    taken = set(target_idx) | set(sel)
    pool = np.array([i for i in range(len(pop.items)) if i not in taken])
    filler = rng.choice(pool, size=min(n_filler, len(pool)), replace=False) if n_filler else np.array([], int)
    if spec.kind == "average":
        vals = _clip(pop, rng.normal(pop.means[filler], np.maximum(pop.stds[filler], 1e-9)))
    elif spec.kind == "segment":
        vals = np.full(len(filler), lo)
    else:  # random, bandwagon, reverse_bandwagon
        vals = _clip(pop, rng.normal(pop.global_mean, pop.global_std, size=len(filler)))
    sel_val = hi if spec.kind in ("bandwagon", "segment") else lo
    prof = [(pop.items[i], "rating", float(tval)) for i in target_idx]
    prof += [(pop.items[i], "rating", float(sel_val)) for i in sel]
    prof += [(pop.items[int(i)], "rating", float(v)) for i, v in zip(filler, vals)]
    order = rng.permutation(len(prof))
    return [prof[k] for k in order]


def _implicit_profile(spec, pop, rng, targets, n_filler):
    filler = rng.choice(len(pop.items), size=min(n_filler, len(pop.items)), replace=False)
    prof = [(pop.items[int(i)], "click", None) for i in filler]
    for t in targets:
        prof += [(t, "click", None)] * int(rng.integers(1, 4))
    order = list(rng.permutation(len(prof)))
    prof = [prof[k] for k in order]
    prof += [(t, "purchase", float(spec.price)) for t in targets]
    return prof


def plan_attack(spec: AttackSpec, pop: Population, seed: int = 0) -> AttackPlan:
    """Decide an attack deterministically from (spec, population, seed)."""
    rng = np.random.default_rng(seed)
    n_users = max(1, int(round(spec.attack_size * len(pop.users))))
    n_filler = int(round(spec.filler_size * len(pop.items)))
    targets = _pick_targets(spec, pop, rng)
    index = {it: k for k, it in enumerate(pop.items)}
    target_idx = [index[t] for t in targets if t in index]
    users = _new_ids(rng, n_users, "u", set(pop.users))
    start = spec.start_ts if spec.start_ts is not None else pop.ts_max - spec.span_s
    profiles, times, eids = [], [], []
    taken_eids: set[str] = set()
    wave_starts = np.sort(start + rng.uniform(0, spec.span_s, size=max(1, spec.n_waves)))
    sel = _selected(spec, pop, set(target_idx), rng)
    for u in range(n_users):
        if spec.kind in RATING_ATTACKS:
            prof = _rating_profile(spec, pop, rng, target_idx, sel, n_filler)
            t0 = start + rng.uniform(0, spec.span_s)
            gaps = rng.exponential(spec.gap_s, size=len(prof))
        else:
            prof = _implicit_profile(spec, pop, rng, targets, n_filler)
            if spec.kind == "click_farm":  # accounts appear in a few bursts, clicking fast
                t0 = wave_starts[u % len(wave_starts)] + rng.uniform(0, 600)
                gaps = rng.exponential(spec.gap_s / 4, size=len(prof))
            else:  # bot: machine-regular timing, tiny jitter
                t0 = start + rng.uniform(0, spec.span_s)
                gaps = spec.bot_interval_s * (1 + rng.uniform(-0.01, 0.01, size=len(prof)))
        gaps[0] = 0.0
        profiles.append(prof)
        times.append([float(x) for x in t0 + np.cumsum(gaps)])
        eids.append(_new_ids(rng, len(prof), "e", taken_eids))
    return AttackPlan(spec, users, targets, profiles, times, eids)
