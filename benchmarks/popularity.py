"""The scorer's popularity list under a click farm, streamed: counted by events (the list before) vs as it is now.

    .venv/bin/python benchmarks/popularity.py [--seeds 3] [--events 30000] [--every 500]

The popularity list is what the scorer serves to users no model knows, and to everyone while no
version is champion. Replays the demo's stream (`streams.local.demo.build_stream`: simulated
events, an attack woven in from the middle) in time order and, every `--every` events, ranks the
farm's target in the list as it would be served then, counted six ways:

- `events`: every account's events per item (the scorer's list before this benchmark: the `items`
  table), the baseline;
- `every account`: distinct accounts per item (the list now until an account is trusted, and in
  the undefended shadow);
- `trusted, farm missed`: distinct accounts that have sent 20 events so far (the trust gate's
  `min_events`, nothing flagged; its other holds, young accounts and swarms, not emulated): the
  trust a detector that misses the farm gives;
- `trusted, farm flagged`: the same without the farm's accounts, as if the detector flagged each
  one from its first event: a bound, not a measurement of the detector (the demo's detector
  flagged the farm with P/R 0.993/1.000 by the stream's end);
- `trusted, the detector`: the accounts the trust gate trusts (`streams.fraud.trust.gate`, the
  default `TrustPolicy`) with the fraud detector (`FraudDetector`, defaults) fed the same events
  and flushed at every checkpoint: the streamed measurement, what it knew then;
- `served, ...`: the list the scorer serves with each of those trusts
  (`streams.serving.changelog.popularity_scores`): each item's share of the trusted accounts
  capped by its share of every account, every account until an account is trusted.

Printed per attack: the target's rank at the stream's end (median over seeds, and the range), and
the exposure: at each checkpoint after the attack's first event, the share of genuine users seen so
far whose list (the top 10 without the items they have seen, as the scorer serves it) holds the
target, averaged over checkpoints (the list served then, not one that saw the future). Attacks:
the demo's default click farm (8 % of users, popular filler, one target) and a farm of fewer
accounts that click more (1 %, up to 30 clicks each on the target). Nothing here was tuned: the
counts are the scorer's own definitions.

Then what the list costs in accuracy, with no attack: HR@10 of each list (seen items excluded) on
the later 20 % of a stream's events, the list fitted on the first 80 %, on the simulator (seeds
as above) and on MovieLens-100K in time order (three stretches of 33,000 ratings; data the
definitions were not chosen on): the served list (trusted: 20 events) and every account beside
events, the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.fraud.detector import FraudDetector  # noqa: E402
from streams.fraud.trust import TrustPolicy, gate  # noqa: E402
from streams.local.demo import build_stream  # noqa: E402
from streams.serving.changelog import popularity_scores  # noqa: E402
from streams.sources import attacks  # noqa: E402
from streams.sources.datasets import read_ratings  # noqa: E402

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k" / "u.data"

TRUSTED_AT = 20  # events: `TrustPolicy.min_events`
WAYS = (
    "events",
    "every account",
    "trusted, farm missed",
    "trusted, farm flagged",
    "trusted, the detector",
    "served, farm missed",
    "served, farm flagged",
    "served, the detector",
)
EMULATED = ("trusted, farm missed", "trusted, farm flagged")  # trust as 20 events, the farm's fixed
ATTACKS = {
    "click farm 8 %, popular filler (the demo's)": ("click_farm:0.08:0.02", {}),
    "click farm 1 %, up to 30 target clicks each": ("click_farm:0.01:0.02", {"max_target_clicks": 30}),
}


def stream(attack: str, overrides: dict, events: int, seed: int):
    """The demo's stream with the attack's generator settings overridden."""
    parse = attacks.parse_inject
    attacks.parse_inject = lambda text, **kw: parse(text, **{**kw, **overrides})
    try:
        return build_stream(None, events, attack, seed, filler="popular")
    finally:
        attacks.parse_inject = parse


def rank(counts: Counter, item: str) -> int:
    """1 + the items counted strictly higher (ties in the item's favour: the attacker's best case)."""
    mine = counts.get(item, 0)
    return 1 + sum(1 for n in counts.values() if n > mine)


def exposure(counts: Counter, target: str, items_of: dict[str, set[str]], users: list[str]) -> float:
    """Share of `users` whose top 10 without their seen items (the scorer's list) holds the target."""
    ranked = sorted(counts, key=lambda item: (-counts[item], item != target))  # ties: the target first
    ranked = ranked[: ranked.index(target) + 1] if target in counts else []
    hits = 0
    for user in users:
        seen = items_of[user]
        if target in seen:
            continue  # never recommended what they had
        shown = 0
        for item in ranked:
            if item not in seen:
                shown += 1
                if shown > 10:
                    break
        hits += shown <= 10 and bool(ranked)
    return hits / max(len(users), 1)


def replay(events: list[dict], farm: set[str], target: str, every: int) -> tuple[dict, dict]:
    """(the target's rank at the end, per way; the exposure at each checkpoint after the attack, per way)."""
    counts = {way: Counter() for way in WAYS[:4]}
    items_of: dict[str, set[str]] = defaultdict(set)
    sent: Counter = Counter()
    n_trusted = dict.fromkeys(EMULATED, 0)
    attack_seen, exposed = False, {way: [] for way in WAYS}
    detector, policy = FraudDetector(), TrustPolicy()

    def trusts(way: str, user: str) -> bool:
        return way == "trusted, farm missed" or user not in farm

    def ranked_ways() -> dict[str, Counter]:
        """Every way's counts now; the detector's trust as of its last flush."""
        out = dict(counts)
        trusted_now = [user for user in sent if gate(policy, detector, user)[0]]
        out["trusted, the detector"] = Counter(item for user in trusted_now for item in items_of[user])
        n_trusted["trusted, the detector"] = len(trusted_now)
        for which in ("farm missed", "farm flagged", "the detector"):
            trusted = f"trusted, {which}"
            scores = popularity_scores(out[trusted], counts["every account"], n_trusted[trusted], len(sent))
            out[f"served, {which}"] = Counter(scores)
        return out

    for n, event in enumerate(events, 1):
        user, item = event["user_id"], event["item_id"]
        attack_seen |= user in farm
        detector.update(user, item, event["type"], event["ts"], event.get("value"))
        counts["events"][item] += 1
        sent[user] += 1
        if item not in items_of[user]:
            items_of[user].add(item)
            counts["every account"][item] += 1
            if sent[user] > TRUSTED_AT:  # trusted already: its new item counts
                for way in EMULATED:
                    if trusts(way, user):
                        counts[way][item] += 1
        if sent[user] == TRUSTED_AT:  # trusted now: every item of its profile counts
            for way in EMULATED:
                if trusts(way, user):
                    n_trusted[way] += 1
                    for seen in items_of[user]:
                        counts[way][seen] += 1
        if n % every == 0:
            detector.flush()  # the worker's fraud agent flushes once per batch
        if attack_seen and n % every == 0:
            genuine = [u for u in sent if u not in farm]
            for way, ranking in ranked_ways().items():
                exposed[way].append(exposure(ranking, target, items_of, genuine))
    detector.flush()
    return {way: rank(ranking, target) for way, ranking in ranked_ways().items()}, exposed


def accuracy(events: list[dict]) -> dict[str, float]:
    """HR@10 per list kind on the later 20 % of `events` (time order), each list fitted on the first 80 %."""
    cut = int(len(events) * 0.8)
    items_of: dict[str, set[str]] = defaultdict(set)
    counts = {way: Counter() for way in ("events", "every account", "trusted")}
    sent: Counter = Counter()
    for event in events[:cut]:
        user, item = event["user_id"], event["item_id"]
        sent[user] += 1
        counts["events"][item] += 1
        if item not in items_of[user]:
            items_of[user].add(item)
            counts["every account"][item] += 1
    trusted = [user for user, n in sent.items() if n >= TRUSTED_AT]
    for user in trusted:
        counts["trusted"].update(items_of[user])
    lists = {
        "events": counts["events"],
        "every account": counts["every account"],
        "served": Counter(popularity_scores(counts["trusted"], counts["every account"], len(trusted), len(sent))),
    }
    held_out = {(e["user_id"], e["item_id"]) for e in events[cut:] if e["user_id"] in sent}
    held_out = {(user, item) for user, item in held_out if item not in items_of[user]}
    out = {}
    for way, ranking in lists.items():
        ranked = sorted(ranking, key=lambda item: (-ranking[item], item))[:500]  # ties: by id, run to run
        top = {}
        for user in {user for user, _ in held_out}:
            top[user] = set([item for item in ranked if item not in items_of[user]][:10])
        out[way] = sum(item in top[user] for user, item in held_out) / max(len(held_out), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--events", type=int, default=30_000, help="genuine events (the demo's default)")
    parser.add_argument("--every", type=int, default=500, help="events between checkpoints")
    args = parser.parse_args()
    for name, (attack, overrides) in ATTACKS.items():
        ends, shares, farm_sizes = defaultdict(list), defaultdict(list), []
        for seed in range(args.seeds):
            events, labels, targets = stream(attack, overrides, args.events, seed)
            end, exposed = replay(events, set(labels), targets[0], args.every)
            farm_sizes.append(len(labels))
            for way in WAYS:
                ends[way].append(end[way])
                shares[way].append(statistics.mean(exposed[way]))
        print(f"\n{name} ({attack}; farm accounts {min(farm_sizes)}-{max(farm_sizes)}, seeds 0-{args.seeds - 1})")
        head = "target's rank at the end: median (range) | genuine lists with the target after the attack"
        print(f"{'counted by':>31} | {head}")
        for way in WAYS:
            r = ends[way]
            label = way + (" (baseline)" if way == "events" else "")
            at_end = f"{statistics.median(r):.0f} ({min(r)}-{max(r)})"
            per_seed = ", ".join(f"{s:.3f}" for s in shares[way])
            print(f"{label:>31} | {at_end:>39} | {statistics.mean(shares[way]):.3f} (per seed {per_seed})")
    streams = {f"simulator seed {seed}": build_stream(None, args.events, "none", seed)[0] for seed in range(args.seeds)}
    ratings = read_ratings(ML100K).sort_values("timestamp", kind="stable")
    for offset in (0, 33_000, 66_000):
        stretch = ratings.iloc[offset : offset + 33_000]
        streams[f"ML-100K from rating {offset}"] = [
            {"user_id": str(u), "item_id": str(i)} for u, i in zip(stretch["user"], stretch["item"])
        ]
    print("\nHR@10 on the later 20 % of each stream, no attack (lists fitted on the first 80 %)")
    print(f"{'stream':>28} | {'events (baseline)':>17} | {'every account':>13} | {'served':>8} | served / events")
    for name, events in streams.items():
        hr = accuracy(events)
        ratio = hr["served"] / hr["events"] if hr["events"] else float("nan")
        print(f"{name:>28} | {hr['events']:17.4f} | {hr['every account']:13.4f} | {hr['served']:8.4f} | {ratio:.3f}")


if __name__ == "__main__":
    main()
