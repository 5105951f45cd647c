"""Attack generators: sizes, filler counts, target ratings, event contract, labels kept apart, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from streams.sources.attacks import ATTACKS, AttackSpec, parse_inject, plan_attack, summarize

CONTRACT = {"event_id", "user_id", "item_id", "type", "ts", "value", "session_id"}


@pytest.fixture(scope="module")
def pop(ratings):
    return summarize(ratings)


def per_user(plan):
    out = {}
    for ev in plan.events():
        out.setdefault(ev["user_id"], []).append(ev)
    return out


def test_summary_of_a_literal_frame():
    import pandas as pd

    df = pd.DataFrame(
        {"user": ["1", "1", "2"], "item": ["a", "b", "a"], "rating": [4.0, 2.0, 5.0], "timestamp": [10.0, 20.0, 30.0]}
    )
    p = summarize(df)
    assert p.items == ("a", "b")
    assert list(p.counts) == [2.0, 1.0] and list(p.means) == [4.5, 2.0]
    assert (p.r_min, p.r_max, p.step, p.ts_min, p.ts_max) == (2.0, 5.0, 1.0, 10.0, 30.0)
    assert p.global_mean == pytest.approx(11 / 3)


@pytest.mark.parametrize("kind", ["random", "average", "bandwagon", "segment", "reverse_bandwagon"])
def test_rating_attack_sizes_and_target(pop, kind):
    spec = AttackSpec(kind, attack_size=0.05, filler_size=0.03, n_selected=3)
    plan = plan_attack(spec, pop, seed=3)
    assert len(plan.users) == 15  # 5% of 300 genuine users
    assert not set(plan.users) & pop.users
    n_sel = 3 if kind in ("bandwagon", "segment", "reverse_bandwagon") else 0
    target = plan.targets[0]
    for _user, evs in per_user(plan).items():
        items = [e["item_id"] for e in evs]
        assert len(items) == len(set(items)) == 1 + n_sel + 12  # 3% of 400 items = 12 fillers
        tval = [e["value"] for e in evs if e["item_id"] == target]
        assert tval == [5.0 if kind != "reverse_bandwagon" else 1.0]
        assert all(pop.r_min <= e["value"] <= pop.r_max and e["type"] == "rating" for e in evs)


def test_bandwagon_selects_the_most_popular_items(pop):
    plan = plan_attack(AttackSpec("bandwagon", 0.02, 0.01, n_selected=2), pop, seed=1)
    top2 = {pop.items[i] for i in np.argsort(-pop.counts, kind="stable")[:2]} - set(plan.targets)
    for evs in per_user(plan).values():
        rated5 = {e["item_id"] for e in evs if e["value"] == 5.0}
        assert top2 <= rated5


def test_segment_rates_filler_at_minimum(pop):
    plan = plan_attack(AttackSpec("segment", 0.02, 0.02, n_selected=3), pop, seed=1)
    for evs in per_user(plan).values():
        assert sorted(e["value"] for e in evs).count(1.0) == 8
        assert sorted(e["value"] for e in evs).count(5.0) == 4  # target + 3 segment items


def test_nuke_flag_and_explicit_target(pop):
    plan = plan_attack(AttackSpec("random", 0.01, 0.01, targets=("7",), push=False), pop, seed=2)
    assert plan.targets == ["7"]
    assert all(e["value"] == 1.0 for e in plan.events() if e["item_id"] == "7")


def test_events_follow_the_contract_and_hide_labels(pop):
    for kind in ATTACKS:
        plan = plan_attack(AttackSpec(kind, 0.02, 0.02), pop, seed=5)
        for ev in plan.events():
            assert set(ev) == CONTRACT
            assert ev["type"] in ("click", "purchase", "rating")
            assert kind not in ev["user_id"] and "atk" not in ev["user_id"]
            assert isinstance(ev["ts"], float)
        assert {u for u, y, k in plan.labels()} == set(plan.users)
        assert {(y, k) for _, y, k in plan.labels()} == {(1, kind)}


def test_timestamps_lie_in_the_span_and_are_ordered_per_user(pop):
    spec = AttackSpec("average", 0.05, 0.03, start_ts=1_000.0, span_s=3_600.0)
    for evs in per_user(plan_attack(spec, pop, seed=4)).values():
        ts = [e["ts"] for e in evs]
        assert ts == sorted(ts) and 1_000.0 <= ts[0] <= 4_600.0


def test_same_seed_same_events_other_seed_other_events(pop):
    spec = AttackSpec("average", 0.05, 0.03)
    a = list(plan_attack(spec, pop, seed=11).events())
    assert a == list(plan_attack(spec, pop, seed=11).events())
    assert a != list(plan_attack(spec, pop, seed=12).events())


def test_click_farm_buys_the_target_in_bursts(pop):
    plan = plan_attack(AttackSpec("click_farm", 0.05, 0.01, n_waves=2), pop, seed=1)
    for evs in per_user(plan).values():
        assert evs[-1]["type"] == "purchase" and evs[-1]["item_id"] == plan.targets[0]
        assert evs[-1]["value"] == 19.99
        assert evs[-1]["ts"] - evs[0]["ts"] < 3_600


def test_bot_timing_is_machine_regular(pop):
    plan = plan_attack(AttackSpec("bot", 0.02, 0.02, bot_interval_s=30.0), pop, seed=1)
    for evs in per_user(plan).values():
        gaps = np.diff([e["ts"] for e in evs])
        assert np.all(np.abs(gaps - 30.0) <= 0.3 + 1e-9)


def test_parse_inject():
    spec = parse_inject("average:0.05:0.03")
    assert (spec.kind, spec.attack_size, spec.filler_size, spec.push) == ("average", 0.05, 0.03, True)
    assert parse_inject("nuke:0.1:0.05").push is False
    assert parse_inject("reverse-bandwagon:0.1:0.05").kind == "reverse_bandwagon"
    with pytest.raises(ValueError):
        parse_inject("average:0.05")
    with pytest.raises(ValueError):
        parse_inject("sybil:0.05:0.03")
