"""An attack's lift: target HR@50 on a fresh, undefended BPR model trained with and without the attack.

The victim is the project's BPR (`training.models.mf`: its `MFConfig` defaults, its loss and L2
per batch, Adam, its triple sampler `training.sampling`), never the attacker's surrogate. Many
conditions (clean and each attack, times several seeds) are trained at once: the K models are
stacked in one tensor and their losses summed, so gradients never mix; Adam is written out here
with a step count per model, so a model whose epoch has fewer batches than the others' sits still
for those steps instead of drifting on its momentum (torch's Adam would move every model at every
step): each model trains exactly as it would alone (a unit test checks it), only the per-step
overhead is shared, which is what makes K fits about K times cheaper on a CPU.

Common random numbers: a model is its genuine pairs plus its own `extra` (attack) pairs, and
every model of one seed draws the *same* genuine triples in the same order each epoch (same
negatives too: the attack's accounts are new users, so genuine users' negatives do not change);
its extra triples go to uniformly drawn positions among them. The order of the union is still a
uniform shuffle, so each model is distributed exactly as the project's BPR on its data, but a
seed's clean and poisoned models differ only by what the attack changed, not by a different
shuffle: the lift (poisoned minus clean, per seed) loses most of the training noise that made
attacks of this size unmeasurable with independent shuffles.

HR@50 of a target: the share of the genuine users who have not rated it whose 50 best unseen items
(seen = their genuine items) contain it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training.models.mf import MFConfig
from training.sampling import PairSet, sample_triples

__all__ = ["fit_stacked", "merge_triples", "target_hit_rate"]

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, as the project's BPR uses


def merge_triples(genuine: tuple[np.ndarray, ...], extra: tuple[np.ndarray, ...], rng: np.random.Generator):
    """The genuine triples in their order with the extra ones, in theirs, at uniformly drawn positions."""
    n_g, n_x = len(genuine[0]), len(extra[0])
    if n_x == 0:
        return genuine
    at = np.zeros(n_g + n_x, bool)
    at[rng.choice(n_g + n_x, n_x, replace=False)] = True
    out = []
    for g, x in zip(genuine, extra):
        col = np.empty(n_g + n_x, np.int64)
        col[~at], col[at] = g, x
        out.append(col)
    return tuple(out)


def fit_stacked(
    genuine: tuple[np.ndarray, np.ndarray],
    extras: list[tuple[np.ndarray, np.ndarray]],
    seeds: list[int],
    n_users: int,
    n_items: int,
    config: MFConfig,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train one BPR model per (genuine + extras[k], seeds[k]) at once; [(user table, item table)] in order.

    Extra pairs must belong to users that have no genuine pair (an attack's new accounts)."""
    K, batch = len(extras), config.batch_size
    gset = PairSet(*genuine)
    xsets = [PairSet(u, i) for u, i in extras]
    P0, Q0 = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s) * 1_000_003)
        P0.append(torch.randn(n_users, config.dim, generator=gen) * config.init_std)
        Q0.append(torch.randn(n_items, config.dim, generator=gen) * config.init_std)
    params = [torch.stack(P0).requires_grad_(), torch.stack(Q0).requires_grad_()]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    genuine_rngs = {s: np.random.default_rng([int(s), 0]) for s in dict.fromkeys(seeds)}
    extra_rngs = [np.random.default_rng([int(s), 1]) for s in seeds]  # a model's draws: its seed's alone
    n_rows = [len(gset) + len(x) for x in xsets]
    steps = -(-max(n_rows) // batch)
    kk = torch.arange(K)[:, None]
    t = torch.zeros(K)
    for _ in range(config.epochs):
        shared = {s: sample_triples(gset.users, gset.items, gset, n_items, rng) for s, rng in genuine_rngs.items()}
        U = np.zeros((K, steps * batch), np.int64)
        Ii, Jj, M = np.zeros_like(U), np.zeros_like(U), np.zeros(U.shape, np.float32)
        for k, xs in enumerate(xsets):
            extra = sample_triples(xs.users, xs.items, xs, n_items, extra_rngs[k]) if len(xs) else ((),) * 3
            u, i, j = merge_triples(shared[seeds[k]], extra, extra_rngs[k])
            U[k, : len(u)], Ii[k, : len(u)], Jj[k, : len(u)], M[k, : len(u)] = u, i, j, 1.0
        tU, tI, tJ, tM = (torch.as_tensor(a) for a in (U, Ii, Jj, M))
        for step, lo in enumerate(range(0, steps * batch, batch)):
            sl = slice(lo, lo + batch)
            m = tM[:, sl]
            P, Q = params
            pu, qi, qj = P[kk, tU[:, sl]], Q[kk, tI[:, sl]], Q[kk, tJ[:, sl]]
            # per model: its batch's mean BPR loss + L2 on the gathered rows, as training.models.mf does
            per = F.softplus(-(pu * (qi - qj)).sum(-1))  # BPR's -log sigmoid(x_ui - x_uj), kept per triple
            reg = config.reg * (pu.square().sum(-1) + qi.square().sum(-1) + qj.square().sum(-1))
            loss = (((per + reg) * m).sum(1) / m.sum(1).clamp_min(1.0)).sum()
            grads = torch.autograd.grad(loss, params)
            active = torch.tensor([step * batch < n for n in n_rows])
            _adam(params, grads, moments, t, active, config.lr)
    return [(params[0][k].detach().numpy(), params[1][k].detach().numpy()) for k in range(K)]


@torch.no_grad()
def _adam(params, grads, moments, t: torch.Tensor, active: torch.Tensor, lr: float) -> None:
    """One Adam step (torch's update, no weight decay) of the active models only; `t` their step counts."""
    b1, b2 = BETAS
    t += active.float()
    rows = torch.nonzero(active).flatten()
    if len(rows) == 0:
        return
    everyone = len(rows) == len(active)
    c1 = (1 - b1 ** t[rows]).view(-1, 1, 1)
    c2 = (1 - b2 ** t[rows]).view(-1, 1, 1)
    for p, g, (m, v) in zip(params, grads, moments):
        if everyone:
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.sub_(lr * (m / c1) / ((v / c2).sqrt_().add_(EPS)))
        else:
            ms = m[rows].mul_(b1).add_(g[rows], alpha=1 - b1)
            vs = v[rows].mul_(b2).addcmul_(g[rows], g[rows], value=1 - b2)
            m[rows], v[rows] = ms, vs
            p[rows] = p[rows] - lr * (ms / c1) / ((vs / c2).sqrt_().add_(EPS))


def target_hit_rate(P: np.ndarray, Q: np.ndarray, users: np.ndarray, seen: list[np.ndarray], t: int, k: int = 50):
    """Share of `users` whose top-k unseen items (by P @ Q.T, `seen[u]` excluded) contain item t."""
    scores = P[users] @ Q.T
    for row, u in enumerate(users):
        scores[row, seen[u]] = -np.inf
    higher = (scores > scores[:, t][:, None]).sum(1)
    return float(np.mean((higher < k) & np.isfinite(scores[:, t])))
