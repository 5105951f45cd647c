"""The attacker's surrogate recommenders, differentiable in the fake profiles: implicit ALS and BPR-shaped MF.

`ALSSurrogate`: implicit ALS (weighted MF, Hu et al. 2008). Leg-UP trains its surrogate (WMF) on
real + fake data with unrolled SGD. Here the surrogate is fitted once on the genuine data with
closed-form ALS sweeps, and the effect of the fake profiles is unrolled in closed form: alternating
ridge solves of (1) the fake users' factors given the item factors and their (soft) profiles and
(2) the target's factor given all users, `unroll` times. Every solve is a small d x d system, so
the gradient with respect to the soft profiles is exact for this unrolled model and costs
milliseconds.

`BPRSurrogate`: the victim's own family (MF trained with the BPR loss, the project's `MFConfig`),
the fakes' effect on the target's factor at equilibrium, also in d x d solves (its class doc).

The attack objective of both is the target's exposure to the genuine users who have not rated it:
a smooth HR@k, the log-sigmoid of the margin between the target's score and the user's k-th best
unseen item (frozen from the genuine model), averaged over those users.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from streams.adversary.lift import fit_stacked
from training.models.mf import MFConfig

__all__ = ["ALSConfig", "ALSSurrogate", "BPRSurrogateConfig", "BPRSurrogate"]


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


class _Surrogate:
    """What both surrogates answer from their `_margins` (target score minus each user's k-th best,
    per user who has not rated the target) and `_target_stats` (those users and k-th scores first)."""

    def attack(self, W: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, smooth HR@k) of soft fake profiles W (n_fake x items, W[:, t] = 1) against target t."""
        margin = self._margins(W, t) / self.config.temp
        return -F.logsigmoid(margin).mean(), torch.sigmoid(margin).mean()

    @torch.no_grad()
    def hit_rate(self, W, t: int) -> float:
        """Hard HR@k of target t under the surrogate with fake profiles W."""
        return float((self._margins(torch.as_tensor(W, dtype=torch.float32), t) > 0).float().mean())

    @torch.no_grad()
    def clean_hit_rate(self, t: int) -> float:
        """Hard HR@k of target t with no fakes."""
        users, kth, *_ = self._target_stats(t)
        return float(((self.P[users] @ self.Q[t]) > kth).float().mean())


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


class ALSSurrogate(_Surrogate):
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
            kth = torch.topk(S, min(cfg.k, S.shape[1]), dim=1).values[:, -1]  # a tiny catalogue: all of it
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


@dataclass(frozen=True)
class BPRSurrogateConfig:
    """The BPR-shaped surrogate: the victim's family (MF + BPR loss), fitted once, fakes' effect in closed form."""

    epochs: int = 40  # of the clean fit (the project's MFConfig otherwise: dim 64, Adam, its sampler)
    newton: int = 3  # Newton steps of the target's factor
    k: int = 50
    temp: float = 0.1  # of the smooth top-k margin, in score units
    fakes: str = "regress"  # a fake's factor: "regress" (below) or "newton" (one Newton step of its BPR loss)
    ridge: float = 0.1  # "regress": ridge of the profile -> factor map, relative to its mean diagonal
    seed: int = 0


class BPRSurrogate(_Surrogate):
    """BPR matrix factorisation on the genuine data plus the closed-form effect of fake profiles on the target.

    The victim is MF trained with the BPR loss; so is this surrogate, fitted once on the genuine data
    (`streams.adversary.lift.fit_stacked`, the project's `MFConfig`). The fakes' effect is the
    target factor's move at equilibrium, everything else held: (1) each fake's factor is what the
    fit gives a genuine user with that profile: `fakes="regress"` (default), a ridge map from
    row-normalised profiles to the fitted user factors (on 200 held-out ML-100K users: cosine 0.87
    to the fitted factor, norms 0.92 of it); `fakes="newton"`, one Newton step from zero on the
    fake's expected BPR loss, p_f = A_f^-1 b_f with b_f = 1/2 sum_i W_fi (q_i - mean q) and
    A_f = sum_i W_fi (1/4 ((q_i - mean q)(q_i - mean q)^T + Cov q) + 2 reg I) (cosine 0.91, but norms
    0.43: it under-states the fakes' pull); (2) the target's factor minimises every BPR term it appears
    in: its raters' positives (genuine and fake) against uniform negatives, the genuine users' other
    positives against it as their sampled negative (rate 1 / their unseen items), and its L2 per
    appearance; `newton` Newton steps from the fitted factor, with and without the fakes, and the
    difference is added to the fitted factor (so the fit's own distance from equilibrium cancels).
    Every step is a d x d solve: the gradient with respect to the soft profiles W is exact for this
    model and costs milliseconds. Not modelled: the fakes pulling their filler items (competitors
    of the target where those users have not seen them) and the other users' and items' response
    (a first-order model of the fillers' rise, tried on the tuning seeds, let the surrogate be
    gamed by rare fillers and lowered the learned attack's lift on the victim: left out).
    """

    def __init__(self, R: np.ndarray, config: BPRSurrogateConfig | None = None, mf: MFConfig | None = None):
        cfg = self.config = config or BPRSurrogateConfig()
        mf = replace(mf or MFConfig(), epochs=cfg.epochs)
        X = R > 0
        n_users, n_items = X.shape
        gu, gi = np.nonzero(X)
        empty = (np.empty(0, int), np.empty(0, int))
        ((P, Q),) = fit_stacked((gu, gi), [empty], [cfg.seed], n_users, n_items, mf)
        self.reg = float(mf.reg)
        self.P = torch.tensor(P, dtype=torch.float32)
        self.Q = torch.tensor(Q, dtype=torch.float32)
        self.seen = torch.tensor(X)
        self.qbar = self.Q.mean(0)
        Qc = self.Q - self.qbar
        self.Qc = Qc
        self.cov = Qc.T @ Qc / n_items
        self.scores = self.P @ self.Q.T
        self.neg_rate = torch.tensor(1.0 / np.maximum(n_items - X.sum(1), 1), dtype=torch.float32)
        self.pair_u = torch.as_tensor(gu)
        self.pair_s = self.scores[self.pair_u, torch.as_tensor(gi)]
        if cfg.fakes == "regress":  # genuine users' factors from their (row-normalised) profiles, ridge
            Xn = torch.tensor(X / np.maximum(X.sum(1, keepdims=True), 1), dtype=torch.float32)
            G = Xn.T @ Xn
            G = G + cfg.ridge * G.diagonal().mean() * torch.eye(n_items)
            self.to_factor = torch.linalg.solve(G, Xn.T @ self.P)
        self._cache: dict[int, tuple] = {}

    def _target_stats(self, t: int):
        """Per target: eval users (genuine, not rated t), their frozen k-th unseen score, raters, the clean optimum."""
        if t not in self._cache:
            users = torch.nonzero(~self.seen[:, t]).flatten()
            S = self.scores[users].masked_fill(self.seen[users], -1e9)
            S[:, t] = -1e9
            kth = torch.topk(S, min(self.config.k, S.shape[1]), dim=1).values[:, -1]
            raters = torch.nonzero(self.seen[:, t]).flatten()
            as_negative = ~self.seen[self.pair_u, t]  # genuine positive pairs whose user may draw t as negative
            stats = (users, kth, raters, as_negative)
            self._cache[t] = (*stats, self._optimum(stats, None, t))
        return self._cache[t]

    def _fake_factors(self, W: torch.Tensor) -> torch.Tensor:
        if self.config.fakes == "regress":
            return (W / W.sum(1, keepdim=True)) @ self.to_factor
        n = W.sum(1)[:, None, None]
        A = 0.25 * (torch.einsum("fi,id,ie->fde", W, self.Qc, self.Qc) + n * self.cov)
        A = A + 2 * self.reg * n * torch.eye(self.Q.shape[1])
        return torch.linalg.solve(A, 0.5 * (W @ self.Qc).unsqueeze(-1)).squeeze(-1)

    def _optimum(self, stats, fakes: tuple[torch.Tensor, torch.Tensor] | None, t: int) -> torch.Tensor:
        """The target's factor after `newton` Newton steps on its BPR terms, from the fitted factor."""
        _, _, raters, as_negative = stats
        Pr, Sr = self.P[raters], self.scores[raters]
        wr = torch.ones(len(raters))
        if fakes is not None:
            Pf, wf = fakes
            Pr, Sr, wr = torch.cat([Pr, Pf]), torch.cat([Sr, Pf @ self.Q.T]), torch.cat([wr, wf])
        pu = self.pair_u[as_negative]
        Pn, sn, rate = self.P[pu], self.pair_s[as_negative], self.neg_rate[pu]
        count = wr.sum() + rate.sum()
        d = self.Q.shape[1]
        q = self.Q[t]
        for _ in range(self.config.newton):
            # raters: softplus(s_rj - p_r.q), averaged over the catalogue (uniform negatives)
            sig = torch.sigmoid(Sr - (Pr @ q)[:, None])
            g = -(wr * sig.mean(1)) @ Pr
            H = (Pr * (wr * (sig * (1 - sig)).mean(1))[:, None]).T @ Pr
            # t as the sampled negative of a genuine positive pair: softplus(p_u.q - s_ui) / unseen(u)
            sn_sig = torch.sigmoid((Pn * q).sum(1) - sn)
            g = g + (rate * sn_sig) @ Pn
            H = H + (Pn * (rate * sn_sig * (1 - sn_sig))[:, None]).T @ Pn
            g = g + 2 * self.reg * count * q
            H = H + 2 * self.reg * count * torch.eye(d)
            q = q - torch.linalg.solve(H, g)
        return q

    def _margins(self, W: torch.Tensor, t: int) -> torch.Tensor:
        stats = self._target_stats(t)
        users, kth, _, _, clean_opt = stats
        q = self.Q[t] + self._optimum(stats[:4], (self._fake_factors(W), W[:, t]), t) - clean_opt
        return self.P[users] @ q - kth
