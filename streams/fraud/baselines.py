"""Published unsupervised baselines, computed in batch on the final data (they see the whole stream).

- RDMA (Chirita et al. 2005): mean |r_ui − mean_i| / count_i over the profile; high = suspicious.
- DegSim (Chirita et al. 2005): mean Pearson similarity (over >= 3 co-rated items) to the k = 10
  most similar users; high = suspicious (attack profiles resemble each other).
Each is used alone, flagging users whose robust z reaches 3.5 (the Iglewicz–Hoaglin outlier
level); `best_f1` beside it is the label-chosen optimum, an upper bound no deployed detector has.
DegSim is O(users²) in memory: fine for the 10³ users of the benchmark sets. Pure numpy / scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from streams.fraud.scoring import best_f1, detection_scores

__all__ = ["rating_matrix", "rdma", "degsim_pearson", "robust_z", "baseline_scores"]

CUTOFF = 3.5


def rating_matrix(frame: pd.DataFrame) -> tuple[list[str], sp.csr_matrix]:
    """(users, users × items sparse ratings) of the rated rows; a user's last rating of an item wins."""
    rated = frame.dropna(subset=["rating"]).drop_duplicates(["user", "item"], keep="last")
    if rated.empty:
        return [], sp.csr_matrix((0, 0))
    users, uinv = np.unique(rated["user"].astype(str).to_numpy(), return_inverse=True)
    _, iinv = np.unique(rated["item"].astype(str).to_numpy(), return_inverse=True)
    m = sp.csr_matrix((rated["rating"].to_numpy(float), (uinv, iinv)))
    return users.tolist(), m


def rdma(m: sp.csr_matrix) -> np.ndarray:
    """RDMA per user."""
    cnt = np.asarray((m != 0).sum(0)).ravel().astype(float)
    mean = np.asarray(m.sum(0)).ravel() / np.maximum(cnt, 1)
    coo = m.tocoo()
    dev = np.abs(coo.data - mean[coo.col]) / np.maximum(cnt[coo.col], 1)
    n = np.bincount(coo.row, minlength=m.shape[0])
    return np.bincount(coo.row, weights=dev, minlength=m.shape[0]) / np.maximum(n, 1)


def degsim_pearson(m: sp.csr_matrix, k: int = 10, min_common: int = 3) -> np.ndarray:
    """Classic DegSim: mean of the k largest Pearson similarities (over co-rated items) per user."""
    n_users = m.shape[0]
    b = (m != 0).astype(float).tocsr()
    cnt = np.asarray(b.sum(1)).ravel()
    mean = np.asarray(m.sum(1)).ravel() / np.maximum(cnt, 1)
    c = sp.csr_matrix(m - sp.diags(mean) @ b)  # centred on each user's mean, zeros stay zeros
    num = (c @ c.T).toarray()
    ss_u = (c.multiply(c).tocsr() @ b.T).toarray()  # u's squared deviations over the items co-rated with v
    common = (b @ b.T).toarray()
    den = np.sqrt(ss_u * ss_u.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where((common >= min_common) & (den > 0), num / den, 0.0)
    np.fill_diagonal(sim, -np.inf)
    top = np.sort(sim, axis=1)[:, -k:]
    top[~np.isfinite(top)] = 0.0
    return top.mean(1) if n_users > k else np.zeros(n_users)


def robust_z(x: np.ndarray, direction: int = 1) -> np.ndarray:
    """direction · (x − median) / (1.4826 MAD)."""
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    return direction * (x - med) / max(mad, 1e-12)


def baseline_scores(frame: pd.DataFrame, attackers: dict[str, str]) -> dict:
    """RDMA alone and DegSim alone at robust z >= 3.5 (with the label-chosen best F1), on the same replay data."""
    users, m = rating_matrix(frame)
    if not users:
        return {}
    out = {}
    for name, x in (("rdma", rdma(m)), ("degsim", degsim_pearson(m))):
        z = robust_z(x)
        flagged = {u for u, s in zip(users, z) if s >= CUTOFF}
        out[name] = {**detection_scores(flagged, users, attackers), "best_f1": best_f1(dict(zip(users, z)), attackers)}
    return out
