"""A surrogate-guided attack without templates: how far the surrogate says this budget can reach.

`SurrogateOracle` writes `n_fake` fake profiles for a target whose `n_fill` filler items are chosen
freely from the catalogue by projected gradient descent on the surrogate's attack loss: one logit
per item (starting from item popularity, so `steps=0` is a "most popular filler" attack), the hard
top-`n_fill` set forward and the relaxed k-hot backward (the generator's `relaxed_topk`), Adam on
the logits, the best hard set by the surrogate's HR@k kept. Every fake gets that set; filler
ratings are the item's rounded mean (the average attack's), the target the top rating. No
discriminator, no template: it does not try to evade; it bounds what the generator, held to real
users' profiles, could reach under the same surrogate, and its lift on the victim says whether the
surrogate's gains transfer at all. A diagnostic baseline of `eval_attack`, not an attack kind.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from streams.adversary.matrix import RatingMatrix, profile_rows
from streams.adversary.networks import relaxed_topk
from streams.sources.attacks import AttackPlan, AttackSpec, schedule_profiles, summarize

__all__ = ["SurrogateOracle"]


class SurrogateOracle:
    """Free-filler fake profiles optimised against a surrogate (`ALSSurrogate` or `BPRSurrogate`)."""

    def __init__(
        self,
        data: RatingMatrix,
        surrogate,
        attack_size: float,
        filler_size: float,
        steps: int = 60,
        lr: float = 0.05,
        tau: float = 0.3,
    ):
        self.data, self.surrogate, self.steps, self.lr, self.tau = data, surrogate, steps, lr, tau
        self.attack_size, self.filler_size = attack_size, filler_size
        self.n_fake = max(1, int(round(attack_size * data.n_users)))
        self.n_fill = max(1, int(round(filler_size * data.n_items)))
        counts = torch.tensor(data.counts, dtype=torch.float32)
        self.start = counts / counts.max()  # popularity: steps=0 is the most-popular filler
        grid = torch.tensor(data.grid)
        means = torch.tensor(data.means, dtype=torch.float32)
        self.values = grid[(means[:, None] - grid[None, :]).abs().argmin(1)]  # rounded item means
        self.history: dict[int, list[float]] = {}
        self._filler: dict[int, np.ndarray] = {}

    def filler(self, t: int) -> np.ndarray:
        """The chosen filler items (indices) for target t (searched once per target, then kept)."""
        if t not in self._filler:
            self._filler[t] = self._search(t)
        return self._filler[t]

    def _search(self, t: int) -> np.ndarray:
        logits = self.start.clone().requires_grad_()
        opt = torch.optim.Adam([logits], lr=self.lr)
        onehot = F.one_hot(torch.tensor(t), self.data.n_items).float()
        banned = onehot * -1e9

        def hard_and_soft(x):
            W = relaxed_topk((x + banned)[None], self.n_fill, self.tau)
            return (W + onehot).expand(self.n_fake, -1)

        best, best_hr, hrs = None, -1.0, []
        for step in range(self.steps + 1):
            W = hard_and_soft(logits)
            hr = self.surrogate.hit_rate(W.detach(), t)
            hrs.append(hr)
            if hr > best_hr:
                best, best_hr = torch.nonzero(W[0].detach() * (1 - onehot)).flatten(), hr
            if step == self.steps:
                break
            loss, _ = self.surrogate.attack(W, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self.history[t] = hrs
        return best.numpy()

    def profiles(self, t: int, n: int | None = None) -> np.ndarray:
        """(n x items) profiles: the chosen filler at rounded item means, the target at the top."""
        n = self.n_fake if n is None else int(n)
        out = np.zeros((n, self.data.n_items), np.float32)
        fill = self.filler(t)
        out[:, fill] = self.values[fill].numpy()
        out[:, t] = self.data.top
        return out

    def plan(self, targets: list[str], seed: int, n: int | None = None) -> AttackPlan:
        """The attack as an `AttackPlan` on item ids (one target: every fake pushes it)."""
        (t,) = self.data.index(targets[:1])
        spec = AttackSpec("gan", self.attack_size, self.filler_size, targets=tuple(targets[:1]))
        rows = profile_rows(self.data, self.profiles(int(t), n))
        return schedule_profiles(spec, summarize(self.data.frame), rows, targets[:1], seed)
