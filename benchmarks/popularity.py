"""The scorer's popularity list under a click farm, streamed: counted by events (the list before) vs by accounts.

    .venv/bin/python benchmarks/popularity.py [--seeds 3] [--events 30000] [--every 500]

The popularity list is what the scorer serves to users no model knows, and to everyone while no
version is champion. Replays the demo's stream (`streams.local.demo.build_stream`: simulated
events, an attack woven in from the middle) in time order and, every `--every` events, ranks the
farm's target in the list as it would be served then, counted four ways:

- `events`: every account's events per item (the scorer's list before this benchmark: the `items`
  table), the baseline;
- `accounts`: distinct accounts per item, every account (the list now, until an account is
  trusted, and in the undefended shadow);
- `trusted, no detector`: distinct accounts that have sent 20 events so far (the trust gate's
  `min_events`, nothing flagged; its other holds, young accounts and swarms, not emulated): what
  trust gives when the detector misses the farm;
- `trusted, oracle`: the same without the farm's accounts, as if the detector flagged each one
  from its first event: a bound, not a measurement of the detector (the demo's detector flagged
  the farm with P/R 0.993/1.000 by the stream's end).

Printed per attack: the target's rank at the stream's end (median over seeds, and the range), and
the exposure: at each checkpoint after the attack's first event, the share of genuine users seen so
far whose list (the top 10 without the items they have seen, as the scorer serves it) holds the
target, averaged over checkpoints (the list served then, not one that saw the future). Attacks:
the demo's default click farm (8 % of users, popular filler, one target) and a farm of fewer
accounts that click more (1 %, up to 30 clicks each on the target). Nothing here was tuned: the
counts are the scorer's own definitions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.local.demo import build_stream  # noqa: E402
from streams.sources import attacks  # noqa: E402

TRUSTED_AT = 20  # events: `TrustPolicy.min_events`
WAYS = ("events", "accounts", "trusted, no detector", "trusted, oracle")
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
    counts = {way: Counter() for way in WAYS}
    items_of: dict[str, set[str]] = defaultdict(set)
    sent: Counter = Counter()
    attack_seen, exposed = False, {way: [] for way in WAYS}
    for n, event in enumerate(events, 1):
        user, item = event["user_id"], event["item_id"]
        attack_seen |= user in farm
        counts["events"][item] += 1
        sent[user] += 1
        trusted = sent[user] >= TRUSTED_AT
        if item not in items_of[user]:
            items_of[user].add(item)
            counts["accounts"][item] += 1
            if trusted and sent[user] > TRUSTED_AT:  # already trusted: its new item counts
                counts["trusted, no detector"][item] += 1
                if user not in farm:
                    counts["trusted, oracle"][item] += 1
        if sent[user] == TRUSTED_AT:  # trusted now: every item of its profile counts
            for seen in items_of[user]:
                counts["trusted, no detector"][seen] += 1
                if user not in farm:
                    counts["trusted, oracle"][seen] += 1
        if attack_seen and n % every == 0:
            genuine = [u for u in sent if u not in farm]
            for way in WAYS:
                exposed[way].append(exposure(counts[way], target, items_of, genuine))
    return {way: rank(counts[way], target) for way in WAYS}, exposed


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


if __name__ == "__main__":
    main()
