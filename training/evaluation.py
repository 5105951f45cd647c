"""Offline evaluation of any recommender: accuracy, perturbation robustness, poisoning robustness.

Protocol (NCF / APR papers): each user's last interaction by timestamp is held out; it is ranked
against 99 distinct seeded negatives the user never interacted with (HR@10, NDCG@10) and against every item
the user did not train on (Recall@20, NDCG@20). Robustness re-runs the sampled metrics after a
scale-free FGSM step on the embeddings. A model is anything with `users`, `items` (Vocabulary) and
`score(user_ids) -> (n_users, n_items) array`; FGSM also needs the `net` embedding tables.
Pure: it reads no files and logs nowhere, so the registry can reuse it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from training.frames import is_in
from training.models.mf import bpr_loss, implicit_pairs
from training.models.popularity import PopularityRecommender
from training.models.served import as_served
from training.sampling import PairSet, sample_distinct_negatives, sample_triples
from training.vocab import Vocabulary

__all__ = [
    "Split",
    "Scorer",
    "leave_last_out",
    "rank_metrics",
    "popularity_baseline",
    "popularity_ranks",
    "sampled_ranks",
    "full_ranks",
    "evaluate",
    "evaluate_as_served",
    "fgsm_perturb",
    "robustness",
    "target_hit_rate",
    "poisoning_lift",
    "FGSM_EPS",
]

FGSM_EPS: tuple[float, ...] = (0.1, 0.25)


class Scorer(Protocol):
    """What evaluation needs from a model."""

    users: Vocabulary
    items: Vocabulary

    def score(self, user_ids: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class Split:
    """Training interactions, one held-out item per test user, and its sampled negatives."""

    train: pd.DataFrame
    test: pd.DataFrame  # columns user, item: one row per test user
    negatives: np.ndarray  # (n_test_users, n_negatives) item ids, str


def leave_last_out(
    interactions: pd.DataFrame, n_negatives: int = 99, seed: int = 0, min_rating: float | None = None
) -> Split:
    """Hold out each user's last positive by timestamp (users with >= 2 positives); sample negatives."""
    df = interactions.assign(user=interactions["user"].astype(str), item=interactions["item"].astype(str))
    pos = df.loc[implicit_pairs(df, min_rating).index]
    pos = pos.drop_duplicates(["user", "item"], keep="last")
    order = pos.assign(_row=np.arange(len(pos))).sort_values(["user", "timestamp", "_row"], kind="stable")
    last = order.groupby("user", sort=False).tail(1)
    sizes = order.groupby("user", sort=False)["item"].transform("size").loc[last.index]
    test = last[sizes > 1]
    held = test["user"] + "\x00" + test["item"]
    train = df[~is_in(df["user"] + "\x00" + df["item"], held)]
    users, items = Vocabulary(df["user"]), Vocabulary(df["item"])
    every = PairSet(users.lookup(df["user"]), items.lookup(df["item"]))
    rng = np.random.default_rng(seed)
    neg = sample_distinct_negatives(users.lookup(test["user"]), every, len(items), n_negatives, rng)
    negatives = np.asarray(items.ids, dtype=object)[neg] if len(test) else np.empty((0, n_negatives), object)
    return Split(train.reset_index(drop=True), test[["user", "item"]].reset_index(drop=True), negatives)


def rank_metrics(ranks: np.ndarray, k: int) -> tuple[float, float]:
    """HR@k and NDCG@k of zero-based ranks of a single relevant item per user."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        return float("nan"), float("nan")
    hit = ranks < k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


def _item_scores(model: Scorer, users: pd.Series, items: np.ndarray) -> np.ndarray:
    """Scores of items (n_users, m) for each user; items the model never saw score -inf."""
    full = model.score(users.to_numpy())
    idx = model.items.lookup(items.ravel()).reshape(items.shape)
    out = np.take_along_axis(full, np.maximum(idx, 0), axis=1).astype(np.float64)
    out[idx < 0] = -np.inf
    return out


def sampled_ranks(model: Scorer, split: Split) -> np.ndarray:
    """Rank of each held-out item among itself and its negatives (ties count against it)."""
    cand = np.concatenate([split.test["item"].to_numpy(dtype=object)[:, None], split.negatives], axis=1)
    s = _item_scores(model, split.test["user"], cand)
    return (s[:, 1:] >= s[:, :1]).sum(1)


def full_ranks(model: Scorer, split: Split) -> np.ndarray:
    """Rank of each held-out item among all items the user did not train on (ties count against it)."""
    users = split.test["user"]
    s = model.score(users.to_numpy()).astype(np.float64)
    tu, ti = model.users.lookup(split.train["user"]), model.items.lookup(split.train["item"])
    known = (tu >= 0) & (ti >= 0)
    rows, cols = PairSet(tu[known], ti[known]).of_users(model.users.lookup(users))
    s[rows, cols] = -np.inf
    rows, target = np.arange(len(s)), model.items.lookup(split.test["item"])
    known = target >= 0
    pos = np.where(known, s[rows, np.maximum(target, 0)], -np.inf)
    s[rows[known], target[known]] = -np.inf  # the held-out item is not its own competitor
    return (s >= pos[:, None]).sum(1)


def evaluate(model: Scorer, split: Split) -> dict[str, float]:
    """HR@10 and NDCG@10 (sampled), Recall@20 and NDCG@20 (full ranking)."""
    hr, ndcg = rank_metrics(sampled_ranks(model, split), 10)
    recall, ndcg20 = rank_metrics(full_ranks(model, split), 20)
    return {"hr@10": hr, "ndcg@10": ndcg, "recall@20": recall, "ndcg@20": ndcg20}


def evaluate_as_served(model: Scorer, split: Split) -> dict[str, float]:
    """`evaluate` of the model as the scorer serves it, the split's training rows as the users'
    profiles (`training.models.served`): a test user whose trained row is stale (a profile item
    the model did not train it on) ranked by the mean of its profile's item vectors, any other by
    its row; what the gate compares, for a stale champion and a fresh challenger alike."""
    return evaluate(as_served(model, split.train), split)


def popularity_ranks(split: Split) -> np.ndarray:
    """`sampled_ranks` of the popularity list fitted on the split's training rows (the scorer's fallback)."""
    return sampled_ranks(PopularityRecommender().fit(split.train), split)


def popularity_baseline(split: Split) -> dict[str, float]:
    """HR@10 and NDCG@10 (sampled, as `evaluate`) of the popularity list fitted on the split's
    training rows: the scorer's fallback, which a served model has to beat."""
    hr, ndcg = rank_metrics(popularity_ranks(split), 10)
    return {"hr@10": hr, "ndcg@10": ndcg}


def fgsm_perturb(model: Any, interactions: pd.DataFrame, eps: float, seed: int = 0) -> Any:
    """A copy of the model whose every user/item row moved by eps·‖row‖ along its BPR-loss gradient."""
    bad = copy.deepcopy(model.as_mf())  # a hybrid is attacked on its effective item vectors
    pairs = implicit_pairs(interactions)
    u, i = bad.users.lookup(pairs["user"]), bad.items.lookup(pairs["item"])
    keep = (u >= 0) & (i >= 0)
    u, i = u[keep], i[keep]
    triples = sample_triples(u, i, PairSet(u, i), len(bad.items), np.random.default_rng(seed))
    net = bad.net
    users, items = net.users.detach().float().requires_grad_(), net.items.detach().float().requires_grad_()
    uu, ii, jj = (torch.as_tensor(a, device=users.device) for a in triples)
    (gu, gi) = torch.autograd.grad(bpr_loss(users[uu], items[ii], items[jj]), [users, items])
    with torch.no_grad():
        for table, grad in ((net.users, gu), (net.items, gi)):
            step = eps * table.norm(dim=1, keepdim=True) * torch.nn.functional.normalize(grad, dim=1)
            table.add_(step.to(table.dtype))
    return bad


def robustness(
    model: Any, split: Split, eps: tuple[float, ...] = FGSM_EPS, seed: int = 0, served: bool = False
) -> dict[str, dict[str, float]]:
    """Sampled HR@10 / NDCG@10 after a scale-free FGSM step of each size in eps; `served`: the
    perturbed model ranked as served (`evaluate_as_served`), to compare with its figures."""
    out = {}
    for e in eps:
        perturbed = fgsm_perturb(model, split.train, e, seed)
        if served:
            perturbed = as_served(perturbed, split.train)
        hr, ndcg = rank_metrics(sampled_ranks(perturbed, split), 10)
        out[str(e)] = {"hr@10": hr, "ndcg@10": ndcg}
    return out


def target_hit_rate(
    model: Any,
    users: list[str],
    targets: list[str],
    k: int = 50,
    exclude_seen: bool = True,
    histories: pd.DataFrame | None = None,
) -> float:
    """Mean over target items of the share of the given users who get it in their top-k; with
    `histories` (user, item), the users are served by their profiles (`training.models.served`)."""
    if histories is not None:
        model = as_served(model, histories[histories["user"].astype(str).isin(set(map(str, users)))])
    items, _ = model.recommend(list(users), k=k, exclude_seen=exclude_seen)
    targets = [str(t) for t in targets]
    if not len(targets) or not len(items):
        return float("nan")
    return float(np.mean([(items == t).any(1).mean() for t in targets]))


def poisoning_lift(
    clean: Any, poisoned: Any, users: list[str], targets: list[str], k: int = 50, histories: pd.DataFrame | None = None
) -> dict[str, float]:
    """Target items' HR@k among genuine users for the clean and the poisoned model, and the lift
    (with `histories`: both served by the users' profiles, as `target_hit_rate`)."""
    before = target_hit_rate(clean, users, targets, k, histories=histories)
    after = target_hit_rate(poisoned, users, targets, k, histories=histories)
    return {f"hr@{k}_clean": before, f"hr@{k}_poisoned": after, "lift": after - before}
