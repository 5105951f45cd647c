"""An attack's lift: target HR@50 on a fresh, undefended BPR model trained with and without the attack.

The victim is the project's BPR (`training.models.mf`: its `MFConfig` defaults, its loss and L2
per batch, its triple sampler `training.sampling`), never the attacker's surrogate. Many
conditions (clean and each attack, times several seeds) are trained at once: the K models are
stacked in one tensor and their losses summed, so gradients never mix and Adam (element-wise)
updates each model exactly as if it trained alone (own initialisation, own shuffles and
negatives); only the per-step overhead is shared, which is what makes K fits about K times
cheaper on a CPU.

HR@50 of a target: the share of the genuine users who have not rated it whose 50 best unseen items
(seen = their genuine items) contain it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training.models.mf import MFConfig
from training.sampling import PairSet, sample_triples

__all__ = ["fit_stacked", "target_hit_rate"]


def fit_stacked(
    pairs: list[tuple[np.ndarray, np.ndarray]], seeds: list[int], n_users: int, n_items: int, config: MFConfig
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train one BPR model per (pairs, seed) at once; [(user table, item table)] in order."""
    sets = [PairSet(u, i) for u, i in pairs]
    P0, Q0 = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s) * 1_000_003)
        P0.append(torch.randn(n_users, config.dim, generator=gen) * config.init_std)
        Q0.append(torch.randn(n_items, config.dim, generator=gen) * config.init_std)
    P, Q = torch.nn.Parameter(torch.stack(P0)), torch.nn.Parameter(torch.stack(Q0))
    opt = torch.optim.Adam([P, Q], lr=config.lr, fused=True)  # the same update as plain Adam, about twice as fast
    rngs = [np.random.default_rng([int(s), 0]) for s in seeds]
    K, batch = len(pairs), config.batch_size
    steps = -(-max(len(s) for s in sets) // batch)
    kk = torch.arange(K)[:, None]
    for _ in range(config.epochs):
        U = np.zeros((K, steps * batch), np.int64)
        Ii, Jj, M = np.zeros_like(U), np.zeros_like(U), np.zeros(U.shape, np.float32)
        for k, ps in enumerate(sets):
            u, i, j = sample_triples(ps.users, ps.items, ps, n_items, rngs[k])
            U[k, : len(u)], Ii[k, : len(u)], Jj[k, : len(u)], M[k, : len(u)] = u, i, j, 1.0
        tU, tI, tJ, tM = (torch.as_tensor(a) for a in (U, Ii, Jj, M))
        for lo in range(0, steps * batch, batch):
            sl = slice(lo, lo + batch)
            m = tM[:, sl]
            pu, qi, qj = P[kk, tU[:, sl]], Q[kk, tI[:, sl]], Q[kk, tJ[:, sl]]
            # per model: its batch's mean BPR loss + L2 on the gathered rows, as training.models.mf does
            per = F.softplus(-(pu * (qi - qj)).sum(-1))  # BPR's -log sigmoid(x_ui - x_uj), kept per triple
            reg = config.reg * (pu.square().sum(-1) + qi.square().sum(-1) + qj.square().sum(-1))
            loss = (((per + reg) * m).sum(1) / m.sum(1).clamp_min(1.0)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return [(P[k].detach().numpy(), Q[k].detach().numpy()) for k in range(K)]


def target_hit_rate(P: np.ndarray, Q: np.ndarray, users: np.ndarray, seen: list[np.ndarray], t: int, k: int = 50):
    """Share of `users` whose top-k unseen items (by P @ Q.T, `seen[u]` excluded) contain item t."""
    scores = P[users] @ Q.T
    for row, u in enumerate(users):
        scores[row, seen[u]] = -np.inf
    higher = (scores > scores[:, t][:, None]).sum(1)
    return float(np.mean((higher < k) & np.isfinite(scores[:, t])))
