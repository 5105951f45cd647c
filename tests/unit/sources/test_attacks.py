"""The one attack generator: sizes, filler, targets, styles, timing models, event contract, labels apart, seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from streams.sources.attacks import ATTACKS, AttackSpec, attack_times, parse_inject, plan_attack, summarize

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
    df = pd.DataFrame(
        {"user": ["1", "1", "2"], "item": ["a", "b", "a"], "rating": [4.0, 2.0, 5.0], "timestamp": [20.0, 10.0, 30.0]}
    )
    p = summarize(df)
    assert p.items == ("a", "b")
    assert list(p.counts) == [2.0, 1.0] and list(p.means) == [4.5, 2.0]
    assert (p.r_min, p.r_max, p.step, p.ts_min, p.ts_max) == (2.0, 5.0, 1.0, 10.0, 30.0)
    assert p.global_mean == pytest.approx(11 / 3)
    assert [t.tolist() for t in p.user_times] == [[10.0, 20.0], [30.0]]


@pytest.mark.parametrize("kind", ["random", "average", "bandwagon", "segment", "reverse_bandwagon"])
def test_rating_attack_sizes_scale_and_target(pop, kind):
    plan = plan_attack(AttackSpec(kind, attack_size=0.05, filler_size=0.03, n_selected=3), pop, seed=3)
    assert len(plan.users) == 15  # 5% of 300 genuine users
    assert not set(plan.users) & pop.users and all(len(u) == 12 and int(u, 16) >= 0 for u in plan.users)
    n_sel = 3 if kind in ("bandwagon", "segment", "reverse_bandwagon") else 0
    [target] = plan.targets
    for evs in per_user(plan).values():
        items = [e["item_id"] for e in evs]
        assert len(items) == len(set(items)) == 1 + n_sel + 12  # 3% of 400 items = 12 fillers
        assert [e["value"] for e in evs if e["item_id"] == target] == [1.0 if kind == "reverse_bandwagon" else 5.0]
        assert all(e["value"] in (1.0, 2.0, 3.0, 4.0, 5.0) and e["type"] == "rating" for e in evs)  # the data's grid


def test_targets_are_items_rated_below_the_median_and_nukes_hit_liked_ones(pop):
    med = np.median(pop.means[pop.counts >= 5])
    index = {it: k for k, it in enumerate(pop.items)}
    for seed in range(5):
        [push] = plan_attack(AttackSpec("average", 0.01, 0.01), pop, seed).targets
        [nuke] = plan_attack(AttackSpec("average", 0.01, 0.01, push=False), pop, seed).targets
        assert pop.means[index[push]] <= med < pop.means[index[nuke]]


def test_bandwagon_selects_the_most_popular_items(pop):
    plan = plan_attack(AttackSpec("bandwagon", 0.02, 0.01, n_selected=2), pop, seed=1)
    top2 = {pop.items[i] for i in np.argsort(-pop.counts, kind="stable")[:2]} - set(plan.targets)
    for evs in per_user(plan).values():
        assert top2 <= {e["item_id"] for e in evs if e["value"] == 5.0}


def test_segment_rates_filler_at_minimum(pop):
    plan = plan_attack(AttackSpec("segment", 0.02, 0.02, n_selected=3), pop, seed=1)
    for evs in per_user(plan).values():
        values = [e["value"] for e in evs]
        assert values.count(1.0) == 8 and values.count(5.0) == 4  # 8 fillers; target + 3 segment items


def test_nuke_flag_and_explicit_target(pop):
    plan = plan_attack(AttackSpec("random", 0.01, 0.01, targets=("7",), push=False), pop, seed=2)
    assert plan.targets == ["7"]
    assert all(e["value"] == 1.0 for e in plan.events() if e["item_id"] == "7")


def test_sdlib_style_uses_whole_stars_and_a_pool_of_targets(pop):
    plan = plan_attack(AttackSpec("average", 0.1, 0.05, style="sdlib", n_targets=5), pop, seed=4)
    assert len(plan.targets) == 5
    index = {it: k for k, it in enumerate(pop.items)}
    sizes = []
    for evs in per_user(plan).values():
        pushed = [e for e in evs if e["item_id"] in plan.targets and e["value"] == 5.0]
        assert len(pushed) == 1  # its own target; other pool items may come up as filler (means <= 3.86)
        filler = [e for e in evs if e is not pushed[0]]
        assert all(e["value"] == np.clip(np.round(pop.means[index[e["item_id"]]]), 1, 5) for e in filler)
        sizes.append(len(filler))
    assert 14 <= np.mean(sizes) <= 21  # ~N(20, 2) draws with replacement, duplicates dropped
    randoms = plan_attack(AttackSpec("random", 0.1, 0.05, style="sdlib"), pop, seed=4)
    assert {e["value"] for e in randoms.events()} <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_events_follow_the_contract_and_hide_labels(pop):
    for kind in ATTACKS:
        plan = plan_attack(AttackSpec(kind, 0.02, 0.02), pop, seed=5)
        ids = set()
        for ev in plan.events():
            assert set(ev) == CONTRACT and ev["type"] in ("click", "purchase", "rating")
            assert kind not in ev["user_id"] and kind not in str(ev["session_id"]) and isinstance(ev["ts"], float)
            ids.add(ev["event_id"])
        assert len(ids) == sum(len(p) for p in plan.profiles)
        assert {u for u, y, k in plan.labels()} == set(plan.users)
        assert {(y, k) for _, y, k in plan.labels()} == {(1, kind)}


def test_spread_timing_covers_the_data_span_and_bunched_is_its_last_day(pop):
    spread = [e["ts"] for e in plan_attack(AttackSpec("average", 0.05, 0.03), pop, seed=1).events()]
    width = pop.ts_max - pop.ts_min
    assert pop.ts_min <= min(spread) and max(spread) <= pop.ts_max and max(spread) - min(spread) > 0.8 * width
    bunched = [e["ts"] for e in plan_attack(AttackSpec("average", 0.05, 0.03, timing="bunched"), pop, seed=1).events()]
    assert min(bunched) >= pop.ts_max - 86_400.0
    for evs in per_user(plan_attack(AttackSpec("average", 0.05, 0.03, timing="bunched"), pop, seed=1)).values():
        assert np.median(np.diff([e["ts"] for e in evs])) < 60.0  # a quick run, ~20 s apart


def test_a_given_span_bounds_every_timing(pop):
    for timing in ("spread", "mimic", "bunched", "waves"):
        spec = AttackSpec("average", 0.05, 0.03, start_ts=1_000.0, span_s=3_600.0, timing=timing)
        for evs in per_user(plan_attack(spec, pop, seed=4)).values():
            ts = [e["ts"] for e in evs]
            late = 600.0 if timing == "waves" else 0.0  # an account joins its wave within 10 minutes
            assert ts == sorted(ts) and 1_000.0 <= ts[0] <= 4_600.0 + late
            if timing in ("spread", "mimic"):
                assert ts[-1] <= 4_600.0


def test_mimic_copies_the_shape_of_a_genuine_users_times():
    rng = np.random.default_rng(0)
    pattern = np.array([0.0, 10.0, 20.0, 1000.0])
    ts = attack_times(rng, 7, (0.0, 5000.0), "mimic", pattern=pattern)
    assert 20.0 < ts[-1] - ts[0] <= 1000.0 and 0.0 <= ts[0] <= 4000.0 and (np.diff(ts) >= 0).all()
    squeezed = attack_times(rng, 7, (0.0, 100.0), "mimic", pattern=pattern)
    assert squeezed[0] >= 0.0 and squeezed[-1] <= 100.0


def test_same_seed_same_events_other_seed_other_events(pop):
    spec = AttackSpec("average", 0.05, 0.03)
    a = list(plan_attack(spec, pop, seed=11).events())
    assert a == list(plan_attack(spec, pop, seed=11).events())
    assert a != list(plan_attack(spec, pop, seed=12).events())


def test_click_farm_clicks_then_buys_its_target(pop):
    plan = plan_attack(AttackSpec("click_farm", 0.05, 0.01), pop, seed=1)
    [target] = plan.targets
    for evs in per_user(plan).values():
        assert evs[-1]["type"] == "purchase" and evs[-1]["item_id"] == target and evs[-1]["value"] == 19.99
        clicks = [e for e in evs[:-1] if e["item_id"] == target]
        assert 1 <= len(clicks) <= 3 and all(e["type"] == "click" for e in evs[:-1])
        assert len(evs) - 1 - len(clicks) == 4  # 1% of 400 filler items, never the target


def test_click_farm_waves_accounts_and_filler_choices(pop):
    waves = plan_attack(AttackSpec("click_farm", 0.05, 0.01, n_waves=2, timing="waves"), pop, seed=1)
    starts = sorted(evs[0]["ts"] for evs in per_user(waves).values())
    assert starts[-1] - starts[0] > 600 and all(
        evs[-1]["ts"] - evs[0]["ts"] < 3_600 for evs in per_user(waves).values()
    )
    gaps = np.diff(starts)
    assert (gaps > 600).sum() == 1  # two bursts of accounts, each started within 10 minutes
    sized = plan_attack(AttackSpec("click_farm", 0.05, 0.0, n_accounts=7, filler_count=(2, 4)), pop, seed=2)
    assert len(sized.users) == 7
    assert all(2 <= sum(e["item_id"] not in sized.targets for e in evs) <= 4 for evs in per_user(sized).values())
    popular = plan_attack(AttackSpec("click_farm", 0.5, 0.05, filler_choice="popular"), pop, seed=3)
    uniform = plan_attack(AttackSpec("click_farm", 0.5, 0.05), pop, seed=3)
    index = {it: k for k, it in enumerate(pop.items)}

    def mean_count(plan):
        return np.mean([pop.counts[index[e["item_id"]]] for e in plan.events() if e["item_id"] not in plan.targets])

    assert mean_count(popular) > 2 * mean_count(uniform)


def test_bot_timing_is_machine_regular(pop):
    plan = plan_attack(AttackSpec("bot", 0.02, 0.02, bot_interval_s=30.0), pop, seed=1)
    for evs in per_user(plan).values():
        gaps = np.diff([e["ts"] for e in evs])
        assert np.all(np.abs(gaps - 30.0) <= 0.3 + 1e-9)


def test_parse_inject_and_spec_checks():
    spec = parse_inject("average:0.05:0.03")
    assert (spec.kind, spec.attack_size, spec.filler_size, spec.push, spec.timing) == (
        "average",
        0.05,
        0.03,
        True,
        "spread",
    )
    assert parse_inject("nuke:0.1:0.05").push is False
    assert parse_inject("reverse-bandwagon:0.1:0.05").kind == "reverse_bandwagon"
    assert parse_inject("random:0.1:0.05", timing="mimic", style="sdlib").timing == "mimic"
    for bad in ("average:0.05", "sybil:0.05:0.03", "average:5%:0.03"):
        with pytest.raises(ValueError):
            parse_inject(bad)
    for kw in ({"timing": "soon"}, {"style": "odd"}, {"filler_choice": "all"}):
        with pytest.raises(ValueError):
            AttackSpec("random", 0.05, 0.03, **kw)
