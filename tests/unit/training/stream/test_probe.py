"""The red-team probe's attack is a parameter: the bandwagon by default, any `ProbeAttack` passed in."""

from __future__ import annotations

import pytest

from tests.unit.training.stream.windows import make_trainer, make_windows
from training.bootstrap import bandwagon_probe
from training.models import BPRRecommender
from training.stream.probe import red_team_probe


def test_the_probe_poisons_with_the_attack_it_is_given_and_names_it(ratings):
    calls = []

    def attack(frame, share, n_targets, seed):
        calls.append((len(frame), share, n_targets, seed))
        return bandwagon_probe(frame, share=share, n_targets=n_targets, seed=seed)

    clean = BPRRecommender(dim=8, epochs=3, device="cpu").fit(ratings)
    train = lambda poisoned: BPRRecommender(dim=8, epochs=3, device="cpu").fit(poisoned)  # noqa: E731
    users = sorted(set(ratings["user"]))[:100]
    result = red_team_probe(train, clean, ratings, users, 0.05, 3, seed=2, round_no=4, attack=attack, kind="mine")
    assert calls == [(len(ratings), 0.05, 3, 2 * 7919 + 4)]
    assert result["attack"] == "mine" and result["round"] == 4 and len(result["targets"]) == 3
    assert 0 <= result["attack_seconds"] <= result["seconds"]
    default = red_team_probe(train, clean, ratings, users, 0.05, 3, seed=2, round_no=4)
    assert default["attack"] == "bandwagon" and default["targets"] == result["targets"]  # same attack, same seed


def test_a_trainer_told_to_probe_with_another_attack_wants_it_passed_in(tmp_path):
    _, files = make_windows(n_windows=1)
    with pytest.raises(ValueError, match="gan"):
        make_trainer(tmp_path, files, probe_attack="gan")
