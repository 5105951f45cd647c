"""Training the generator, and attacking with it: `train_attacker(...)` -> `LearnedAttacker`; `generate_attack`.

One training step simulates one attack: a target is drawn from the push pool (the heuristics' rule:
>= 5 ratings, mean at or below the median), `n_fake` templates are drawn from the real users with
at least `n_fill + template_slack` ratings (the target removed), and the generator's
straight-through profiles are scored by
- the surrogate's attack loss (`BPRSurrogate.attack` or `ALSSurrogate.attack`, as `config.surrogate`
  names: smooth HR@50 of the target for the genuine users who have not rated it, with the fakes'
  effect on the surrogate in closed form), and
- the discriminator (non-saturating GAN loss; D sees the filler only, against same-size random
  subsets of real profiles), which takes one step per generator step.
Everything is seeded: the same data, config and seed give the same generator, and
`generate(n, targets, seed)` the same profiles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from streams.adversary.matrix import RatingMatrix, profile_rows, push_pool
from streams.adversary.networks import Discriminator, Generator
from streams.adversary.surrogate import ALSConfig, ALSSurrogate, BPRSurrogate, BPRSurrogateConfig
from streams.sources.attacks import AttackPlan, AttackSpec, schedule_profiles, summarize

__all__ = ["GanConfig", "LearnedAttacker", "train_attacker", "generate_attack", "build_surrogate"]

Surrogate = ALSSurrogate | BPRSurrogate


def build_surrogate(R: np.ndarray, config: ALSConfig | BPRSurrogateConfig) -> Surrogate:
    """The surrogate a config names: BPR-shaped MF (`BPRSurrogateConfig`) or implicit ALS (`ALSConfig`)."""
    return BPRSurrogate(R, config) if isinstance(config, BPRSurrogateConfig) else ALSSurrogate(R, config)


@dataclass(frozen=True)
class GanConfig:
    attack_size: float = 0.05  # fakes / genuine users
    filler_size: float = 0.03  # filler items / items
    steps: int = 400
    lr_g: float = 2e-3
    lr_d: float = 1e-3
    w_attack: float = 1.0
    w_adv: float = 0.1
    tau: float = 0.3
    tau_r: float = 0.5
    hidden: int = 128
    anchor: float = 6.0  # initial weight of the template's own rating (6: ~99.7 % kept at the start)
    template_slack: int = 10
    popularity: float = 0.0  # the selection's starting bias: popularity x log(raters / most raters)
    seed: int = 0
    # the victim's family (BPR-shaped MF); ALSConfig() for the implicit-ALS surrogate of the first version
    surrogate: ALSConfig | BPRSurrogateConfig = field(default_factory=BPRSurrogateConfig)


class LearnedAttacker:
    """A generator, its discriminator and surrogate, and what they need to train and attack."""

    def __init__(self, data: RatingMatrix, config: GanConfig | None = None, surrogate: Surrogate | None = None):
        cfg = self.config = config or GanConfig()
        t0 = time.perf_counter()
        self.data = data
        self.surrogate = surrogate or build_surrogate(data.R, cfg.surrogate)
        torch.manual_seed(cfg.seed)
        self.n_fill = max(1, int(round(cfg.filler_size * data.n_items)))
        self.n_fake = max(1, int(round(cfg.attack_size * data.n_users)))
        sizes = (data.R > 0).sum(1)
        self.templates = np.flatnonzero(sizes >= self.n_fill + 1 + cfg.template_slack)
        if not len(self.templates):
            self.templates = np.flatnonzero(sizes >= self.n_fill + 1)
        if not len(self.templates):
            raise ValueError(f"no real user has more than {self.n_fill} ratings to serve as a template")
        self.real_rows = np.flatnonzero(sizes >= self.n_fill)
        self.pool = push_pool(data)
        prior = cfg.popularity * torch.log(torch.tensor(np.maximum(data.counts, 1) / max(data.counts.max(), 1)))
        self.G = Generator(
            data.n_items, torch.tensor(data.grid), self.surrogate.Q, cfg.hidden, anchor=cfg.anchor, item_prior=prior
        )
        self.D = Discriminator(data.n_items, top=data.top)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d)
        self.rng = np.random.default_rng([cfg.seed, 1])
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.history: list[dict] = []
        self.steps_done = 0
        self.setup_seconds = time.perf_counter() - t0
        self.train_seconds = 0.0

    # ---- sampling ----------------------------------------------------------------------------
    def _forward(self, targets: np.ndarray, rng: np.random.Generator, gen: torch.Generator):
        rows = rng.choice(self.templates, size=len(targets), replace=len(targets) > len(self.templates))
        T = torch.tensor(self.data.R[rows])
        tt = torch.as_tensor(targets)
        T[torch.arange(len(targets)), tt] = 0.0
        W, vals = self.G(T, tt, self.n_fill, gen, self.config.tau, self.config.tau_r)
        onehot = F.one_hot(tt, self.data.n_items).float()
        Wt = W * (1 - onehot) + onehot  # the target, rated at the top, is added outside the network
        Vt = Wt * (vals * (1 - onehot) + self.data.top * onehot)
        return W, W * vals, Wt, Vt

    def _real_subsets(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.rng.choice(self.real_rows, size=n)
        W = np.zeros((n, self.data.n_items), np.float32)
        for k, u in enumerate(rows):
            W[k, self.rng.choice(np.flatnonzero(self.data.R[u]), self.n_fill, replace=False)] = 1.0
        return torch.tensor(W), torch.tensor(W * self.data.R[rows])

    # ---- training ----------------------------------------------------------------------------
    def step(self, target: int | None = None) -> dict:
        """One generator step (surrogate exposure + fooling D) and one discriminator step; the step's figures."""
        cfg = self.config
        t = int(self.rng.choice(self.pool)) if target is None else int(target)
        self.G.train()
        Wf, Vf, Wt, _ = self._forward(np.full(self.n_fake, t), self.rng, self.gen)
        l_att, smooth_hr = self.surrogate.attack(Wt, t)
        l_adv = F.softplus(-self.D(Wf, Vf)).mean()
        loss = cfg.w_attack * l_att + cfg.w_adv * l_adv
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        Wr, Vr = self._real_subsets(self.n_fake)
        self.D.train()
        d_real, d_fake = self.D(Wr, Vr), self.D(Wf.detach(), Vf.detach())
        d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.steps_done += 1
        return {
            "g_loss": float(loss.detach()),
            "attack_loss": float(l_att.detach()),
            "surrogate_hr": float(smooth_hr.detach()),
            "adv_loss": float(l_adv.detach()),
            "d_loss": float(d_loss.detach()),
            "d_fooled": float((d_fake.detach() > 0).float().mean()),
        }

    def train(self, steps: int, log_every: int = 50, tag: str = "gan") -> list[dict]:
        """`steps` generator + discriminator steps; a record of mean figures every `log_every` steps."""
        start = time.perf_counter()
        acc: dict[str, list[float]] = {}
        log = []
        for s in range(steps):
            for k, v in self.step().items():
                acc.setdefault(k, []).append(v)
            if (s + 1) % log_every == 0 or s == steps - 1:
                seconds = self.train_seconds + time.perf_counter() - start
                log.append({"step": self.steps_done, "tag": tag, **{k: float(np.mean(v)) for k, v in acc.items()}})
                log[-1]["seconds"] = seconds
                acc = {}
        self.train_seconds += time.perf_counter() - start
        self.history += log
        return log

    # ---- attacking ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, n: int | None, targets, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(profiles, target of each fake): `n` discrete profiles (n x items, 0 = absent), the target at the top.

        Fakes are split over `targets` (item indices) in turn. Deterministic in (weights, n, targets, seed).
        """
        n = self.n_fake if n is None else int(n)
        per = np.resize(np.atleast_1d(np.asarray(targets, int)), n)
        rng = np.random.default_rng([seed, 2])
        gen = torch.Generator().manual_seed(int(seed) * 7919 + 11)
        self.G.eval()
        _, _, _, Vt = self._forward(per, rng, gen)
        return Vt.numpy().astype(np.float32), per

    def plan(self, targets: list[str], seed: int, n: int | None = None, spec: AttackSpec | None = None) -> AttackPlan:
        """The attack as an `AttackPlan` (events of the Kafka contract, labels apart), on item ids.

        `spec` (kind "gan") sets the timing and span; by default events spread over the data's span.
        """
        profiles, _ = self.generate(n, self.data.index(targets), seed)
        spec = replace(
            spec or AttackSpec("gan", self.config.attack_size, self.config.filler_size), targets=tuple(targets)
        )
        return schedule_profiles(spec, summarize(self.data.frame), profile_rows(self.data, profiles), targets, seed)


def train_attacker(data: RatingMatrix | pd.DataFrame, config: GanConfig | None = None) -> LearnedAttacker:
    """Build (surrogate, networks) and train the generator for `config.steps` steps."""
    data = data if isinstance(data, RatingMatrix) else RatingMatrix.from_frame(data)
    attacker = LearnedAttacker(data, config)
    attacker.train(attacker.config.steps)
    return attacker


def generate_attack(
    ratings: pd.DataFrame,
    targets: list[str] | tuple[str, ...] = (),
    size: float = 0.05,
    filler: float = 0.03,
    seed: int = 0,
    steps: int | None = None,
    attacker: LearnedAttacker | None = None,
    spec: AttackSpec | None = None,
) -> AttackPlan:
    """A learned push attack on `ratings` (a `read_ratings` frame): an `AttackPlan` whose `events()` are Kafka events.

    Trains a generator (seeded by `seed`; `steps` default 400, minutes on ML-100K on a CPU) unless a
    trained `attacker` is given. Without `targets`, one item of the push pool is drawn with `seed`.
    `plan.labels()` gives the ground truth apart from the events; `spec` (kind "gan") sets timing and span.
    """
    if attacker is None:
        cfg = replace(GanConfig(), attack_size=size, filler_size=filler, seed=seed)
        attacker = train_attacker(ratings, replace(cfg, steps=cfg.steps if steps is None else steps))
    if not targets:
        targets = [str(attacker.data.items[np.random.default_rng([seed, 5]).choice(attacker.pool)])]
    n = max(1, int(round(size * attacker.data.n_users)))
    return attacker.plan(list(targets), seed, n, spec)
