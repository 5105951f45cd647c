"""The generator, the surrogate and the learned attacker: shapes, the scale, determinism by seed, the plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from streams.adversary.learner import GanConfig, LearnedAttacker, generate_attack
from streams.adversary.matrix import RatingMatrix
from streams.adversary.networks import Generator, relaxed_topk
from streams.adversary.surrogate import ALSConfig, ALSSurrogate, BPRSurrogate, BPRSurrogateConfig
from tests.unit.conftest import make_ratings
from training.models.mf import MFConfig

SMALL = GanConfig(steps=3, hidden=32, surrogate=ALSConfig(dim=8, sweeps=3))


@pytest.fixture(scope="module")
def frame():
    return make_ratings(120, 200, seed=3)


@pytest.fixture(scope="module")
def data(frame):
    return RatingMatrix.from_frame(frame)


def trained(data, seed: int = 0, steps: int = 3) -> LearnedAttacker:
    attacker = LearnedAttacker(data, replace(SMALL, seed=seed))
    attacker.train(steps)
    return attacker


def test_relaxed_topk_is_hard_top_k_forward_and_differentiable_backward():
    scores = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5]], requires_grad=True)
    khot = relaxed_topk(scores, 2, tau=0.5)
    assert khot.detach().tolist() == [[0.0, 1.0, 0.0, 1.0, 0.0]]
    (khot * torch.arange(5.0)).sum().backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0


def test_generator_picks_exactly_n_fill_template_items_never_the_target_with_grid_ratings(data):
    grid = torch.tensor(data.grid)
    G = Generator(data.n_items, grid, torch.randn(data.n_items, 8), hidden=16)
    template = torch.tensor(data.R[:6])
    targets = torch.tensor([int(np.flatnonzero(data.R[u])[0]) for u in range(6)])  # an item each template rated
    W, values = G(template, targets, 5, torch.Generator().manual_seed(0))
    assert W.shape == values.shape == (6, data.n_items)
    hard = W.detach()
    assert torch.equal(hard.sum(1), torch.full((6,), 5.0))
    assert (hard * (template == 0)).sum() == 0  # only the template's items
    assert hard[torch.arange(6), targets].sum() == 0  # never the target
    assert set(values.detach().unique().tolist()) <= set(data.grid.tolist())
    W.sum().backward()
    assert G.sel.weight.grad is not None and G.sel.weight.grad.abs().sum() > 0


def test_same_seed_same_generator_and_profiles_other_seed_differs(data):
    a, b, c = trained(data, 0), trained(data, 0), trained(data, 1)
    target = int(a.pool[0])
    pa, _ = a.generate(None, [target], seed=7)
    pb, _ = b.generate(None, [target], seed=7)
    assert np.array_equal(pa, pb)
    weights = [{k: v.clone() for k, v in x.G.state_dict().items()} for x in (a, b, c)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert not np.array_equal(pa, a.generate(None, [target], seed=8)[0])  # a fresh seed, fresh profiles


def test_profiles_push_the_target_at_the_top_with_n_fill_filler(data):
    a = trained(data)
    target = int(a.pool[1])
    profiles, per = a.generate(10, [target], seed=3)
    assert profiles.shape == (10, data.n_items) and (per == target).all()
    assert (profiles[:, target] == data.top).all()
    assert ((profiles > 0).sum(1) == a.n_fill + 1).all()


SURROGATES = {
    "als": lambda R: ALSSurrogate(R, ALSConfig(dim=8, sweeps=5)),
    "bpr": lambda R: BPRSurrogate(R, BPRSurrogateConfig(epochs=10), mf=replace(MFConfig(), dim=8)),
}


@pytest.mark.parametrize("kind", sorted(SURROGATES))
def test_fans_of_the_target_raise_its_surrogate_exposure_and_the_loss_has_a_gradient(data, kind):
    surrogate = SURROGATES[kind](data.R)
    t = int(np.argmin(data.counts + 1e6 * (data.counts < 3)))  # a rarely rated item
    fakes = np.zeros((6, data.n_items), np.float32)
    fakes[:, t] = 1.0
    fakes[:, np.argsort(-data.counts)[:8]] = 1.0  # six fans who also rate popular items
    assert surrogate.hit_rate(fakes, t) > surrogate.clean_hit_rate(t)
    W = torch.tensor(fakes, requires_grad=True)
    loss, _ = surrogate.attack(W, t)
    loss.backward()
    assert W.grad.abs().sum() > 0


def test_the_bpr_surrogate_moves_the_target_toward_its_fakes_and_not_at_all_without_them(data):
    surrogate = SURROGATES["bpr"](data.R)
    t = int(np.argmin(data.counts + 1e6 * (data.counts < 3)))
    stats = surrogate._target_stats(t)
    assert torch.allclose(surrogate._optimum(stats[:4], None, t), stats[4])  # no fakes: no move
    fakes = torch.zeros((6, data.n_items))
    fakes[:, t] = 1.0
    fakes[:, np.argsort(-data.counts)[:8]] = 1.0
    Pf = surrogate._fake_factors(fakes)
    moved = surrogate._optimum(stats[:4], (Pf, fakes[:, t]), t) - stats[4]
    assert float(moved @ Pf.mean(0)) > 0  # the fakes pull the target's factor their way
    assert surrogate.hit_rate(fakes, t) >= surrogate.clean_hit_rate(t)


def test_a_popularity_prior_makes_the_untrained_generator_lean_to_the_templates_popular_items(data):
    plain = LearnedAttacker(data, replace(SMALL, popularity=0.0))
    leaning = LearnedAttacker(data, replace(SMALL, popularity=50.0), surrogate=plain.surrogate)
    target = int(plain.pool[0])

    def filler_popularity(attacker):
        profiles, _ = attacker.generate(20, [target], seed=1)
        rows, items = np.nonzero(profiles > 0)
        return data.counts[items[items != target]].mean()

    assert filler_popularity(leaning) > 1.2 * filler_popularity(plain)
    assert torch.equal(plain.G.item_bias.detach(), torch.zeros(data.n_items))  # no prior: AUSH's sampling


def test_generate_attack_is_a_plan_of_the_event_contract_with_labels_apart(frame, data):
    a = trained(data)
    target = str(data.items[a.pool[2]])
    plan = generate_attack(frame, [target], size=0.05, filler=0.03, seed=4, attacker=a)
    events = list(plan.events())
    users = {e["user_id"] for e in events}
    assert len(users) == round(0.05 * data.n_users) == len(plan.users)
    assert not users & set(frame["user"])
    assert {k for _, _, k in plan.labels()} == {"gan"}
    assert all(set(e) == {"event_id", "user_id", "item_id", "type", "ts", "value", "session_id"} for e in events)
    pushes = [e for e in events if e["item_id"] == target]
    assert len(pushes) == len(users) and all(e["value"] == data.top for e in pushes)
    lo, hi = frame["timestamp"].min(), frame["timestamp"].max()
    assert all(lo <= e["ts"] <= hi for e in events)  # spread over the data's span
    again = generate_attack(frame, [target], size=0.05, filler=0.03, seed=4, attacker=a)
    assert list(again.events()) == events
