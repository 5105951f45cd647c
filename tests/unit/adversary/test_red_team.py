"""The learned attacker as the red-team probe: `gan_probe`, its wiring into the trainer and `training.main`."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from streams.adversary.learner import GanConfig
from streams.adversary.red_team import gan_probe
from streams.adversary.surrogate import ALSConfig
from streams.contract.settings import Settings
from tests.unit.training.stream.windows import make_windows
from training.bootstrap import bandwagon_probe
from training.main import probe_attack
from training.stream.loop import run
from training.stream.quarantine import Quarantine
from training.stream.state import StateStore
from training.stream.trainer import Trainer, TrainerConfig
from training.testing import MemorySource, RecordingRounds

SMALL = GanConfig(steps=3, hidden=32, surrogate=ALSConfig(dim=8, sweeps=3))


def test_gan_probe_adds_a_share_of_learned_fakes_pushing_the_bandwagon_probes_targets(ratings):
    poisoned, targets = gan_probe(ratings, seed=0, config=SMALL)
    pd.testing.assert_frame_equal(poisoned.iloc[: len(ratings)], ratings)  # the genuine rows untouched
    fake = poisoned.iloc[len(ratings) :]
    assert fake["user"].nunique() == round(0.05 * ratings["user"].nunique()) == 15
    assert not set(fake["user"]) & set(ratings["user"])
    assert targets == bandwagon_probe(ratings, seed=0)[1]  # the same unpopular targets as the bandwagon probe
    genuine = [set(items) for _, items in ratings.groupby("user")["item"]]
    for _, profile in fake.groupby("user"):
        rated = dict(zip(profile["item"], profile["rating"]))
        assert all(rated[t] == 5.0 for t in targets)  # every fake pushes every target at the top
        filler = set(rated) - set(targets)
        assert 25 <= len(filler) <= 30  # 30 filler items (fewer where the template held other targets)
        assert any(filler <= items for items in genuine)  # written from a real user's profile
        assert set(profile["rating"]) <= set(ratings["rating"])  # on the data's own scale
    again, same = gan_probe(ratings, seed=0, config=SMALL)
    pd.testing.assert_frame_equal(again, poisoned)
    assert same == targets and gan_probe(ratings, seed=1, config=SMALL)[1] != targets


def test_gan_probe_with_a_popularity_prior_and_no_training_pushes_with_more_popular_filler(ratings):
    counts = ratings["item"].value_counts()
    plain, targets = gan_probe(ratings, seed=0, steps=0, config=SMALL)
    leaning, same = gan_probe(ratings, seed=0, steps=0, popularity=50.0, config=SMALL)
    assert same == targets

    def filler_popularity(poisoned):
        fake = poisoned.iloc[len(ratings) :]
        return counts[fake.loc[~fake["item"].isin(targets), "item"]].mean()

    assert filler_popularity(leaning) > 1.2 * filler_popularity(plain)


def test_gan_probe_shrinks_the_filler_to_the_largest_profile():
    rows = [(str(u), str(i), 4.0, float(u * 100 + i)) for u in range(40) for i in range(u % 7, u % 7 + 8)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    poisoned, targets = gan_probe(frame, share=0.1, n_targets=1, seed=0, config=SMALL)
    fake = poisoned.iloc[len(frame) :]
    assert fake["user"].nunique() == 4 and fake.groupby("user").size().max() <= 8  # 7 filler + the target


def test_a_trainer_probes_with_the_learned_attacker_when_it_is_passed_in(tmp_path):
    batches, files = make_windows(n_windows=2)
    rounds = RecordingRounds()
    attack = functools.partial(gan_probe, config=SMALL)
    config = TrainerConfig(model="bpr", epochs=5, first_epochs=20, min_batch_rows=10**9, probe_attack="gan")
    trainer = Trainer(config, StateStore(tmp_path / "state"), files.__getitem__, rounds, probe_attack=attack)
    run(trainer, MemorySource(batches), Quarantine(), idle_timeout=0)
    ((_, report, lineage),) = rounds.calls
    poisoning = report["poisoning"]
    assert poisoning["attack"] == "gan" and lineage["trainer_config"]["probe_attack"] == "gan"
    assert len(poisoning["targets"]) == 5 and np.isfinite(poisoning["lift"])
    assert 0 < poisoning["attack_seconds"] < poisoning["seconds"] == report["probe_seconds"]


def test_the_composition_root_picks_the_probe_attack_from_settings():
    assert probe_attack(Settings()) is bandwagon_probe
    learned = probe_attack(Settings(probe_attack="gan", probe_gan_steps=7, probe_gan_popularity=2.0))
    assert learned.func is gan_probe and learned.keywords == {"steps": 7, "popularity": 2.0}
    with pytest.raises(ValidationError):
        Settings(probe_attack="segment")
