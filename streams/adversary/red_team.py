"""The learned attacker as the gate's red team: `gan_probe`, a drop-in for `training.bootstrap.bandwagon_probe`.

`gan_probe(frame, share=, n_targets=, seed=)` trains a small generator on the probed data (the round's
new rows) and returns the frame plus its fake users, and the targets. Same probe as the bandwagon
one but for who writes the profiles: the same targets (`training.bootstrap.probe_targets`: unpopular
items with 5 to 20 interactions), the same number of fakes (`share` of the frame's users), each
pushing every target at the top rating beside `filler` filler items, which here the generator
picks from a real user's profile (its template) instead of at random. The stream trainer gets it
from its composition root (`training.main`, `ADVREC_PROBE_ATTACK=gan`): `training` sits below
this room and must not import it.

Cost: the generator trains inside a training round, so its default (`PROBE_GAN`) is small:
`steps` generator steps (`ADVREC_PROBE_GAN_STEPS`, 60 by default) against the default (BPR-shaped)
surrogate, whose own fit is one 40-epoch BPR on the probed rows. On the whole of ML-100K as one
round's rows (the worst case) it took 33 s of CPU (one thread) against 0.1 s for the bandwagon;
the probe's second training of the round comes on top of either.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from streams.adversary.learner import GanConfig, LearnedAttacker
from streams.adversary.matrix import RatingMatrix, profile_rows
from streams.sources.attacks import AttackSpec, schedule_profiles, summarize
from training.bootstrap import attack_rows, probe_targets

__all__ = ["PROBE_GAN", "gan_probe"]

PROBE_GAN = GanConfig(steps=60, hidden=64)


def gan_probe(
    frame: pd.DataFrame,
    share: float = 0.05,
    n_targets: int = 5,
    filler: int = 30,
    seed: int = 0,
    steps: int | None = None,
    popularity: float | None = None,
    config: GanConfig = PROBE_GAN,
) -> tuple[pd.DataFrame, list[str]]:
    """The frame plus learned fake users (`share` of its users) who push `n_targets` unpopular items, and the targets.

    `steps` and `popularity` override `config`'s (the generator's training steps, its popularity
    prior: with `steps=0, popularity=2` the probe is the popularity-leaning template sampler, the
    strongest attack measured on ML-100K, docs/detection.md). Deterministic in (frame, arguments).
    Where no user has more than `filler` items, the filler shrinks to what the largest profile allows
    (a template must hold it).
    """
    rng = np.random.default_rng(seed)
    targets = probe_targets(frame, n_targets, rng)
    data = RatingMatrix.from_frame(frame[["user", "item", "rating", "timestamp"]])
    largest = int((data.R > 0).sum(1).max())
    n_fill = max(1, min(filler, largest - 1, data.n_items - len(targets)))
    n_fake = max(1, int(round(share * data.n_users)))
    cfg = replace(
        config,
        attack_size=n_fake / data.n_users,
        filler_size=n_fill / data.n_items,
        seed=seed,
        steps=config.steps if steps is None else steps,
        popularity=config.popularity if popularity is None else popularity,
    )
    attacker = LearnedAttacker(data, cfg)
    attacker.train(cfg.steps)
    columns = data.index(targets)
    profiles, _ = attacker.generate(n_fake, columns, seed)
    profiles[:, columns] = data.top  # every fake pushes every target, as the bandwagon probe's do
    spec = AttackSpec("gan", cfg.attack_size, cfg.filler_size, targets=tuple(targets))
    plan = schedule_profiles(spec, summarize(frame), profile_rows(data, profiles), targets, seed)
    return pd.concat([frame, attack_rows(plan)], ignore_index=True), targets
