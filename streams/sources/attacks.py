"""The one attack generator of advrec: shilling profiles, click farms and bots, as plain event dicts.

Rating attacks follow the standard models (Lam & Riedl 2004; Mobasher et al. 2007): filler items
drawn uniformly from the catalogue; random filler ~ N(global mean, global sd), average filler ~
N(item mean, item sd), both rounded to the data's own rating step and clipped to its scale;
bandwagon = the `n_selected` most popular items at the maximum plus random filler; segment =
well-liked popular items at the maximum, filler at the minimum; reverse bandwagon = poorly rated
items and the target at the minimum. The target is pushed at the scale's maximum (nuked at the
minimum). `style="sdlib"` reproduces SDLib's generator instead (filler = round(item mean) for
average, uniform whole stars otherwise, drawn with replacement; a pool of `n_targets` targets),
kept inside the scale. Implicit attacks: each click-farm account clicks filler items (a share of
the catalogue or an absolute range, uniform or by popularity), clicks its target 1..k times and
then buys it; bots do the same at one event every `bot_interval_s`.

Timing (`timing`), inside the attack's span (by default the genuine data's whole time span):
"spread" draws each attacker event uniformly over the span; "mimic" copies the time pattern of a
random genuine user (squeezed into the span if longer); "bunched" starts each attacker at a random
point and rates every ~`gap_s` seconds (with no span given: in the data's last 24 h, the old
behaviour, kept for comparison);
"waves" sends the accounts in `n_waves` bursts (the old demo's click farm).

Pure and seeded: a population summary plus an `AttackSpec` give a deterministic `AttackPlan`
whose `events()` yield dicts of the Kafka event contract and whose `labels()` yield the ground
truth separately. Attacker ids are opaque 12-hex strings. It must never put a label (or anything
that reveals one) into an event, and never touches a file, Kafka or the clock.
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
    "LEARNED_ATTACKS",
    "TIMINGS",
    "STYLES",
    "Population",
    "AttackSpec",
    "AttackPlan",
    "summarize",
    "plan_attack",
    "schedule_profiles",
    "parse_inject",
    "attack_times",
]

RATING_ATTACKS = ("random", "average", "bandwagon", "segment", "reverse_bandwagon")
IMPLICIT_ATTACKS = ("click_farm", "bot")
ATTACKS = RATING_ATTACKS + IMPLICIT_ATTACKS
# Attacks whose profiles a trained model writes (`streams.adversary`); this module only schedules them.
LEARNED_ATTACKS = ("gan",)
TIMINGS = ("spread", "mimic", "bunched", "waves")
STYLES = ("standard", "sdlib")
DAY_S = 86_400.0


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
    user_times: tuple[np.ndarray, ...] = ()  # per genuine user: its sorted event times (for "mimic")


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
    timed = ratings.dropna(subset=["timestamp"])
    global_mean = float(rated["rating"].mean()) if len(rated) else 3.0
    times = tuple(np.sort(g.to_numpy(float)) for _, g in timed.groupby("user", sort=True)["timestamp"])
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
        step=float(diffs.min()) if len(diffs) else 1.0,
        ts_min=float(timed["timestamp"].min()) if len(timed) else 0.0,
        ts_max=float(timed["timestamp"].max()) if len(timed) else 0.0,
        user_times=times,
    )


@dataclass(frozen=True)
class AttackSpec:
    """One attack: model, size (attackers / genuine users), filler size (filler / all items), targets, timing."""

    kind: str
    attack_size: float
    filler_size: float
    targets: tuple[str, ...] = ()  # explicit targets; default: `n_targets` picked by the model
    push: bool = True
    n_selected: int = 3  # bandwagon / segment / reverse-bandwagon items
    start_ts: float | None = None  # span of the attack: [start_ts, start_ts + span_s] ...
    span_s: float | None = None  # ... default: the data's whole span ("bunched": its last 24 h)
    timing: str = "spread"
    style: str = "standard"  # rating attacks: "standard" | "sdlib"
    n_targets: int = 1  # size of the target pool
    targets_per_attacker: int = 1
    n_accounts: int | None = None  # implicit attacks: an absolute count instead of attack_size
    filler_count: tuple[int, int] | None = None  # implicit attacks: absolute filler range, overrides filler_size
    filler_choice: str = "uniform"  # implicit attacks: "uniform" | "popular"
    max_target_clicks: int = 3
    purchase: bool = True
    gap_s: float = 20.0  # mean gap of "bunched" ratings; clicks of "bunched" / "waves" farms use gap_s / 4
    bot_interval_s: float = 30.0
    n_waves: int = 3
    price: float = 19.99

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS + LEARNED_ATTACKS:
            raise ValueError(f"unknown attack {self.kind!r}; one of {', '.join(ATTACKS + LEARNED_ATTACKS)}")
        if not 0 < self.attack_size <= 10 or not 0 <= self.filler_size < 1:
            raise ValueError("attack_size must be in (0, 10], filler_size in [0, 1)")
        if self.timing not in TIMINGS:
            raise ValueError(f"unknown timing {self.timing!r}; one of {', '.join(TIMINGS)}")
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; one of {', '.join(STYLES)}")
        if self.filler_choice not in ("uniform", "popular"):
            raise ValueError(f"unknown filler choice {self.filler_choice!r}")
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
    try:
        size, filler = float(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"--inject wants TYPE:ATTACK_SIZE:FILLER_SIZE with numbers, got {text!r}") from None
    return AttackSpec(kind, size, filler, **overrides)


@dataclass
class AttackPlan:
    """A fully decided attack: who does what, how and when. `events()` and `labels()` read it."""

    spec: AttackSpec
    users: list[str]
    targets: list[str]
    profiles: list[list[tuple[str, str, float | None]]]  # per user: (item, type, value) in time order
    times: list[list[float]]
    event_ids: list[list[str]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    def events(self) -> Iterator[dict]:
        """Yield the attack's events (the Kafka contract), user by user, each in time order."""
        for u, user in enumerate(self.users):
            for (item, kind, value), ts, eid in zip(self.profiles[u], self.times[u], self.event_ids[u]):
                yield {
                    "event_id": eid,
                    "user_id": user,
                    "item_id": item,
                    "type": kind,
                    "ts": ts,
                    "value": value,
                    "session_id": self.sessions[u],
                }

    def labels(self) -> Iterator[tuple[str, int, str]]:
        """Yield (user_id, 1, attack kind) for every injected account."""
        for user in self.users:
            yield user, 1, self.spec.kind


def _new_ids(rng: np.random.Generator, n: int, taken: set[str], prefix: str = "") -> list[str]:
    """`n` opaque random 12-hex ids (with `prefix`) not in `taken` (which they join)."""
    out: list[str] = []
    while len(out) < n:
        cand = prefix + f"{int(rng.integers(0, 2**48)):012x}"
        if cand not in taken:
            taken.add(cand)
            out.append(cand)
    return out


def _span(spec: AttackSpec, pop: Population) -> tuple[float, float]:
    if spec.start_ts is not None:
        return spec.start_ts, spec.start_ts + (spec.span_s if spec.span_s is not None else DAY_S)
    if spec.span_s is not None:
        return pop.ts_max - spec.span_s, pop.ts_max
    if spec.timing == "bunched":
        return pop.ts_max - DAY_S, pop.ts_max
    return pop.ts_min, pop.ts_max


def attack_times(
    rng: np.random.Generator,
    n: int,
    span: tuple[float, float],
    timing: str,
    gap_s: float = 20.0,
    pattern: np.ndarray | None = None,
    start: float | None = None,
) -> np.ndarray:
    """Sorted times of one attacker's `n` events under a timing model, inside `span`.

    "spread": uniform over the span; "mimic": the shape of `pattern` (a genuine user's times),
    resampled to `n` events, at a random start; "bunched" / "waves": from `start` (default: uniform
    in the span) with exponential gaps of mean `gap_s`.
    """
    lo, hi = span
    if timing == "spread":
        return np.sort(rng.uniform(lo, hi, size=n))
    if timing == "mimic" and pattern is not None and len(pattern):
        offsets = pattern - pattern[0]
        q = np.sort(rng.uniform(0, 1, size=n))
        if len(offsets) > 1:
            rel = np.interp(q * (len(offsets) - 1), np.arange(len(offsets)), offsets)
        else:
            rel = np.zeros(n)
        rel = rel - rel[0]
        if rel[-1] > hi - lo > 0:  # a pattern longer than the span is squeezed into it
            rel = rel * ((hi - lo) / rel[-1])
        return rng.uniform(lo, max(lo, hi - rel[-1])) + rel
    if start is None:
        start = rng.uniform(lo, hi)
    gaps = rng.exponential(gap_s, size=n)
    gaps[0] = 0.0
    return start + np.cumsum(gaps)


def _round(pop: Population, x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x / pop.step) * pop.step, pop.r_min, pop.r_max)


def _pick_targets(spec: AttackSpec, pop: Population, rng: np.random.Generator) -> list[str]:
    if spec.targets:
        return list(spec.targets)
    lo, hi = pop.r_min, pop.r_max
    if spec.kind in IMPLICIT_ATTACKS:
        ok = pop.counts >= 5 if (pop.counts >= 5).sum() >= spec.n_targets else pop.counts >= 1
    elif spec.style == "sdlib":  # SDLib: 5 < count < 50 and mean <= its threshold (3.0 on FilmTrust's 0.5..4)
        ok = (pop.counts > 5) & (pop.counts < 50) & (pop.means <= lo + 0.715 * (hi - lo))
    else:  # push an item rated below the median; nuke a well-liked one (both with some ratings)
        ok = pop.counts >= 5
        if ok.any():
            ref = pop.means[ok]
            ok &= (pop.means <= np.median(ref)) if spec.push else (pop.means >= np.quantile(ref, 0.75))
    pool = np.flatnonzero(ok) if ok.any() else np.arange(len(pop.items))
    picked = rng.choice(pool, size=min(spec.n_targets, len(pool)), replace=False)
    return [pop.items[int(i)] for i in picked]


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


def _rating_profile(spec, pop, rng, targets, index, sel, n_filler) -> list[tuple[str, str, float | None]]:
    lo, hi = pop.r_min, pop.r_max
    taken = {index[t] for t in targets if t in index} | set(sel)
    if spec.style == "sdlib":  # SDLib: ~N(n, n/10) draws with replacement, duplicates and taken items dropped
        count = abs(int(round(rng.normal(n_filler, 0.1 * n_filler))))
        filler = np.array([i for i in np.unique(rng.integers(0, len(pop.items), size=count)) if i not in taken], int)
    else:
        pool = np.setdiff1d(np.arange(len(pop.items)), np.fromiter(taken, int, len(taken)))
        filler = rng.choice(pool, size=min(n_filler, len(pool)), replace=False)
    whole = np.arange(np.ceil(lo), np.floor(hi) + 1)
    if spec.kind == "segment":
        vals = np.full(len(filler), lo)
    elif spec.kind == "average":
        if spec.style == "sdlib":
            vals = np.clip(np.round(pop.means[filler]), lo, hi)
        else:
            vals = _round(pop, rng.normal(pop.means[filler], np.maximum(pop.stds[filler], 1e-9)))
    elif spec.style == "sdlib" and len(whole):
        vals = rng.choice(whole, size=len(filler))
    else:  # random, bandwagon, reverse_bandwagon
        vals = _round(pop, rng.normal(pop.global_mean, pop.global_std, size=len(filler)))
    sel_val = hi if spec.kind in ("bandwagon", "segment") else lo
    prof = [(t, "rating", float(hi if spec.push else lo)) for t in targets]
    prof += [(pop.items[i], "rating", float(sel_val)) for i in sel]
    prof += [(pop.items[int(i)], "rating", float(v)) for i, v in zip(filler, vals)]
    return [prof[k] for k in rng.permutation(len(prof))]


def _implicit_profile(spec, pop, rng, targets, index) -> list[tuple[str, str, float | None]]:
    if spec.filler_count is not None:
        n_filler = int(rng.integers(spec.filler_count[0], spec.filler_count[1] + 1))
    else:
        n_filler = int(round(spec.filler_size * len(pop.items)))
    ok = np.ones(len(pop.items), bool)
    ok[[index[t] for t in targets if t in index]] = False
    pool = np.flatnonzero(ok)
    p = pop.counts[pool] / pop.counts[pool].sum() if spec.filler_choice == "popular" else None
    filler = rng.choice(pool, size=min(n_filler, len(pool)), replace=False, p=p)
    prof: list[tuple[str, str, float | None]] = [(pop.items[int(i)], "click", None) for i in filler]
    for t in targets:
        prof += [(t, "click", None)] * int(rng.integers(1, spec.max_target_clicks + 1))
    prof = [prof[k] for k in rng.permutation(len(prof))]
    if spec.purchase:
        prof += [(t, "purchase", float(spec.price)) for t in targets]
    return prof


def plan_attack(spec: AttackSpec, pop: Population, seed: int = 0) -> AttackPlan:
    """Decide an attack deterministically from (spec, population, seed)."""
    if spec.kind in LEARNED_ATTACKS:
        raise ValueError(f"{spec.kind!r} profiles are written by a trained model (streams.adversary), not planned here")
    rng = np.random.default_rng(seed)
    implicit = spec.kind in IMPLICIT_ATTACKS
    n_users = spec.n_accounts if implicit and spec.n_accounts else max(1, int(round(spec.attack_size * len(pop.users))))
    n_filler = int(round(spec.filler_size * len(pop.items)))
    pool = _pick_targets(spec, pop, rng)
    index = {it: k for k, it in enumerate(pop.items)}
    sel = [] if implicit else _selected(spec, pop, {index[t] for t in pool if t in index}, rng)
    span = _span(spec, pop)
    wave_starts = np.sort(span[0] + rng.uniform(0, span[1] - span[0], size=max(1, spec.n_waves)))
    users = _new_ids(rng, n_users, set(pop.users))
    taken_eids: set[str] = set()
    profiles, times, eids = [], [], []
    for u in range(n_users):
        k = min(spec.targets_per_attacker, len(pool))
        targets = [pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False)] if pool else []
        if implicit:
            prof = _implicit_profile(spec, pop, rng, targets, index)
        else:
            prof = _rating_profile(spec, pop, rng, targets, index, sel, n_filler)
        profiles.append(prof)
        times.append(_profile_times(spec, pop, rng, len(prof), u, span, wave_starts))
        eids.append(_new_ids(rng, len(prof), taken_eids, "e"))
    sessions = _new_ids(rng, n_users, set(), "s")
    return AttackPlan(spec, users, pool, profiles, times, eids, sessions)


def _profile_times(spec, pop, rng, n, u, span, wave_starts) -> list[float]:
    """Times of attacker `u`'s `n` events under the spec's timing model."""
    if spec.kind == "bot":  # machine-regular: one event every bot_interval_s, ±1 % jitter per gap
        start = rng.uniform(span[0], max(span[0], span[1] - n * spec.bot_interval_s))
        gaps = spec.bot_interval_s * (1 + rng.uniform(-0.01, 0.01, size=n))
        gaps[0] = 0.0
        ts = start + np.cumsum(gaps)
    elif spec.timing == "waves":  # accounts arrive in a few bursts and click fast
        start = wave_starts[u % len(wave_starts)] + rng.uniform(0, 600)
        ts = attack_times(rng, n, span, "bunched", spec.gap_s / 4, start=start)
    else:
        pattern = (
            pop.user_times[int(rng.integers(len(pop.user_times)))]
            if spec.timing == "mimic" and pop.user_times
            else None
        )
        gap = spec.gap_s / 4 if spec.kind in IMPLICIT_ATTACKS else spec.gap_s
        ts = attack_times(rng, n, span, spec.timing, gap, pattern=pattern)
    return [float(x) for x in ts]


def schedule_profiles(
    spec: AttackSpec,
    pop: Population,
    profiles: list[list[tuple[str, str, float | None]]],
    targets: list[str],
    seed: int,
) -> AttackPlan:
    """An `AttackPlan` of profiles decided elsewhere (a learned attack): opaque ids and the spec's timing.

    Each profile's events are shuffled before they are timed, so event order says nothing of how
    the profile was written.
    """
    rng = np.random.default_rng([seed, 31])
    span = _span(spec, pop)
    wave_starts = np.sort(span[0] + rng.uniform(0, span[1] - span[0], size=max(1, spec.n_waves)))
    users = _new_ids(rng, len(profiles), set(pop.users))
    taken_eids: set[str] = set()
    shuffled, times, eids = [], [], []
    for u, prof in enumerate(profiles):
        prof = [prof[k] for k in rng.permutation(len(prof))]
        shuffled.append(prof)
        times.append(_profile_times(spec, pop, rng, len(prof), u, span, wave_starts))
        eids.append(_new_ids(rng, len(prof), taken_eids, "e"))
    sessions = _new_ids(rng, len(profiles), set(), "s")
    return AttackPlan(spec, users, list(targets), shuffled, times, eids, sessions)
