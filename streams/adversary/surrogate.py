"""The attacker's surrogate recommender: implicit ALS (weighted MF, Hu et al. 2008), differentiable in the fakes.

Leg-UP trains its surrogate (WMF) on real + fake data with unrolled SGD. Here the surrogate is fitted
once on the genuine data with closed-form ALS sweeps, and the effect of the fake profiles is
unrolled in closed form: alternating ridge solves of (1) the fake users' factors given the item
factors and their (soft) profiles and (2) the target's factor given all users, `unroll` times.
Every solve is a small d x d system, so the gradient with respect to the soft profiles is exact
for this unrolled model and costs milliseconds.

The attack objective is the target's exposure to the genuine users who have not rated it: a smooth
HR@k, the log-sigmoid of the margin between the target's score and the user's k-th best unseen item
(frozen from the genuine model), averaged over those users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ALSConfig", "ALSSurrogate"]


@dataclass(frozen=True)
class ALSConfig:
    dim: int = 32
    alpha: float = 10.0  # confidence of an observed pair: 1 + alpha
    reg: float = 5.0
    sweeps: int = 12
    unroll: int = 2  # alternating (fakes, target) closed-form steps
    k: int = 50
    temp: float = 0.05  # of the smooth top-k margin, in score units
    seed: int = 0


def _als_solve(fixed: np.ndarray, X: np.ndarray, alpha: float, reg: float) -> np.ndarray:
    """Rows' factors given the other side's `fixed` factors; X binary (rows x cols)."""
    d = fixed.shape[1]
    gram = fixed.T @ fixed + reg * np.eye(d)
    out = np.zeros((X.shape[0], d))
    for r in range(X.shape[0]):
        idx = np.flatnonzero(X[r])
        if len(idx):
            Y = fixed[idx]
            out[r] = np.linalg.solve(gram + alpha * Y.T @ Y, (1 + alpha) * Y.sum(0))
    return out


class ALSSurrogate:
    """Implicit ALS on the genuine binary matrix plus the closed-form unrolled effect of fake profiles."""

    def __init__(self, R: np.ndarray, config: ALSConfig | None = None):
        cfg = self.config = config or ALSConfig()
        X = (R > 0).astype(np.float64)
        rng = np.random.default_rng(cfg.seed)
        Q = rng.normal(0, 0.1, (X.shape[1], cfg.dim))
        for _ in range(cfg.sweeps):
            P = _als_solve(Q, X, cfg.alpha, cfg.reg)
            Q = _als_solve(P, X.T, cfg.alpha, cfg.reg)
        self.P = torch.tensor(P, dtype=torch.float32)
        self.Q = torch.tensor(Q, dtype=torch.float32)
        self.gram_p = self.P.T @ self.P
        self.seen = torch.tensor(X > 0)
        self._cache: dict[int, tuple] = {}

    def _target_stats(self, t: int):
        """Per target: eval users (genuine, not rated t), their frozen k-th unseen score, real-user sums for q_t."""
        if t not in self._cache:
            cfg = self.config
            users = torch.nonzero(~self.seen[:, t]).flatten()
            S = (self.P[users] @ self.Q.T).masked_fill(self.seen[users], -1e9)
            S[:, t] = -1e9
            kth = torch.topk(S, cfg.k, dim=1).values[:, -1]
            Pr = self.P[torch.nonzero(self.seen[:, t]).flatten()]
            self._cache[t] = (users, kth, self.gram_p + cfg.alpha * Pr.T @ Pr, (1 + cfg.alpha) * Pr.sum(0))
        return self._cache[t]

    def _fake_factors(self, W: torch.Tensor, q_t: torch.Tensor | None, t: int) -> torch.Tensor:
        cfg = self.config
        Q = self.Q
        if q_t is not None:
            Q = Q.clone()
            Q[t] = q_t
        gram = Q.T @ Q + cfg.reg * torch.eye(cfg.dim)
        A = gram.unsqueeze(0) + cfg.alpha * torch.einsum("fi,id,ie->fde", W, Q, Q)
        b = ((1 + cfg.alpha * W) * W) @ Q
        return torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1)

    def _target_factor(self, Pf: torch.Tensor, t: int) -> torch.Tensor:
        cfg = self.config
        _, _, A, b = self._target_stats(t)
        A = A + (1 + cfg.alpha) * Pf.T @ Pf + cfg.reg * torch.eye(cfg.dim)
        return torch.linalg.solve(A, b + (1 + cfg.alpha) * Pf.sum(0))

    def _margins(self, W: torch.Tensor, t: int) -> torch.Tensor:
        users, kth, _, _ = self._target_stats(t)
        q_t = None
        for _ in range(self.config.unroll):
            q_t = self._target_factor(self._fake_factors(W, q_t, t), t)
        return self.P[users] @ q_t - kth

    def attack(self, W: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, smooth HR@k) of soft fake profiles W (n_fake x items, W[:, t] = 1) against target t."""
        margin = self._margins(W, t) / self.config.temp
        return -F.logsigmoid(margin).mean(), torch.sigmoid(margin).mean()

    @torch.no_grad()
    def hit_rate(self, W, t: int) -> float:
        """Hard HR@k of target t under the unrolled surrogate with fake profiles W."""
        return float((self._margins(torch.as_tensor(W, dtype=torch.float32), t) > 0).float().mean())

    @torch.no_grad()
    def clean_hit_rate(self, t: int) -> float:
        """Hard HR@k of target t with no fakes."""
        users, kth, _, _ = self._target_stats(t)
        return float(((self.P[users] @ self.Q[t]) > kth).float().mean())
