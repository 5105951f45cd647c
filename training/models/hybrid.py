"""Hybrid matrix factorisation: item vector = ID embedding + learned projection of a frozen text embedding.

    score(u, i) = p_u · q_i,    q_i = m_i · e_i + W t_i

p_u, e_i: ID rows (as in `training.models.MatrixFactorization`); t_i: the item's frozen, L2-normalised
text embedding (zeros when the item has no text); W: a learned (dim × d_text) projection, no bias
(a bias would add the same vector to every item, which cannot change a ranking);
m_i = 1 once the item has had an interaction, else 0, so an item known only from the catalog
("cold") is scored from its text alone, whatever its ID row holds.

Training is BPR, or APR (He et al. 2018) when `adversarial`: the adversary perturbs the user rows,
the item ID rows AND the projected text part W t_i along the fast-gradient direction of its item,
with Δ a constant. `adv_scale` says how far: "parts" moves each part by ε·‖part‖ (the item by
ε·(‖m_i e_i‖ + ‖W t_i‖)); "vector" moves the item by ε·‖q_i‖, as APR moves an ID-only model's
item row (by the triangle inequality never further than "parts"). Absolute mode: ε per part, or ε.
`id_dropout` zeroes the ID part of a training item with that probability (DropoutNet-style), so
that W t_i alone must rank well: what a cold item gets.

Negatives are drawn uniformly among items that have at least one training interaction (never
catalog-only items, whose rows must stay untrained). With no text at all, `fit` equals
`training.models.APRRecommender` up to float rounding (BPR: `BPRRecommender`, bit for bit) with the
same config (tested).

Warm start: `train_round` / `add_items` append rows (users/items: N(0, init_std²) for items that come
with interactions, zeros for catalog-only items; text rows as given); existing ID rows and W are
carried over bit-identical. Save format "advrec.hybrid/2" (torch file of tensors and plain values,
`weights_only` loadable). Pure torch / numpy / pandas: it must never import Kafka or MLflow, nor
encode text itself (vectors come from `training.text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from training.models.apr import APRConfig, adversarial_delta
from training.models.mf import BPRRecommender, MatrixFactorization, bpr_loss, implicit_pairs
from training.sampling import PairSet
from training.vocab import Vocabulary

__all__ = ["HybridConfig", "HybridMF", "HybridRecommender", "sample_triples_among", "SAVE_FORMAT"]

SAVE_FORMAT = "advrec.hybrid/2"  # /1: the same, with the id lists as lists
READ_FORMATS = ("advrec.hybrid/1", SAVE_FORMAT)


@dataclass(frozen=True)
class HybridConfig(APRConfig):
    """APR's tuned hyper-parameters plus the text part.

    adversarial: APR objective (else plain BPR; then use reg 3e-3 like `MFConfig`).
    reg_text:    L2 on the projected text part W t_i of the batch items (like `reg` on ID rows).
    id_dropout:  probability of dropping an item's ID part in a training batch.
    proj_init_std: N(0, σ²) init of W; with unit-norm t each coordinate of W t starts ~N(0, σ²).
    adv_scale:   size of an item's adversarial step: "parts" (ε·‖m e‖ + ε·‖W t‖) or "vector" (ε·‖q‖).
    """

    adversarial: bool = True
    reg_text: float = 1e-3
    id_dropout: float = 0.0
    proj_init_std: float = 0.1
    adv_scale: str = "parts"

    def __post_init__(self) -> None:
        if self.adv_scale not in ("parts", "vector"):
            raise ValueError(f"adv_scale must be 'parts' or 'vector', not {self.adv_scale!r}")


class HybridMF(torch.nn.Module):
    """User and item ID tables, a frozen text table (buffer) and the text projection W."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        d_text: int,
        init_std: float,
        proj_init_std: float,
        generator: torch.Generator | None = None,
        proj_generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.d_text, self.init_std = dim, d_text, init_std
        self.users = torch.nn.Parameter(torch.randn(n_users, dim, generator=generator) * init_std)
        self.items = torch.nn.Parameter(torch.randn(n_items, dim, generator=generator) * init_std)
        self.proj = torch.nn.Parameter(torch.randn(dim, d_text, generator=proj_generator) * proj_init_std)
        self.register_buffer("text", torch.zeros(n_items, d_text))
        self.register_buffer("trained", torch.zeros(n_items, dtype=torch.bool))

    def grow(
        self, n_users: int, n_items: int, generator: torch.Generator | None = None, zero_items: bool = False
    ) -> None:
        """Append rows up to the given sizes (random, or zero item rows); old rows bit-identical."""
        for name, n in (("users", n_users), ("items", n_items)):
            old = getattr(self, name)
            if n > old.shape[0]:
                k = n - old.shape[0]
                new = (
                    torch.zeros(k, self.dim)
                    if (zero_items and name == "items")
                    else torch.randn(k, self.dim, generator=generator) * self.init_std
                )
                setattr(self, name, torch.nn.Parameter(torch.cat([old.detach(), new.to(old.device, old.dtype)])))
        k = n_items - self.text.shape[0]
        if k > 0:
            self.text = torch.cat([self.text, self.text.new_zeros(k, self.d_text)])
            self.trained = torch.cat([self.trained, self.trained.new_zeros(k)])

    def text_part(self, i: torch.Tensor) -> torch.Tensor:
        """W t_i of the indexed items."""
        return self.text[i] @ self.proj.T

    def item_vectors(self, i: torch.Tensor | None = None) -> torch.Tensor:
        """q_i = m_i e_i + W t_i (all items when i is None)."""
        if i is None:
            return self.items * self.trained[:, None] + self.text @ self.proj.T
        return self.items[i] * self.trained[i, None] + self.text_part(i)

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return (self.users[u] * self.item_vectors(i)).sum(-1)


def sample_triples_among(
    users: np.ndarray,
    items: np.ndarray,
    positives: PairSet,
    active: np.ndarray,
    rng: np.random.Generator,
    max_tries: int = 50,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled (user, positive, negative) triples; negatives uniform among `active` item indices,
    never a positive of the user. Same draws as `training.sampling.sample_triples` when
    active = arange(n_items)."""
    order = rng.permutation(len(users))
    u, i = users[order], items[order]
    n = len(active)
    j = active[rng.integers(0, n, size=len(u))]
    todo = np.flatnonzero(positives.contains(u, j))
    for _ in range(max_tries):
        if len(todo) == 0:
            break
        j[todo] = active[rng.integers(0, n, size=len(todo))]
        todo = todo[positives.contains(u[todo], j[todo])]
    return u, i, j


def _row_direction(grad: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unique rows, inverse map and the unit direction of the gradient summed per row."""
    unique, inverse = torch.unique(index, return_inverse=True)
    summed = torch.zeros(len(unique), grad.shape[1], dtype=grad.dtype, device=grad.device)
    summed.index_add_(0, inverse, grad)
    return unique, inverse, F.normalize(summed, dim=1)


class HybridRecommender(BPRRecommender):
    """ID + text hybrid matrix factorisation, BPR or APR: `BPRRecommender`'s loop, rounds and scoring
    with its own tables, loss, negatives and text."""

    kind: ClassVar[str] = "hybrid"
    save_format: ClassVar[str] = SAVE_FORMAT
    read_formats: ClassVar[tuple[str, ...]] = READ_FORMATS
    uses_item_text: ClassVar[bool] = True
    config_class: ClassVar[type] = HybridConfig
    _adv_from: int = 0
    _round_text: tuple | None = None  # (item_ids, vectors, encoder) of the round being trained

    # ---- state -------------------------------------------------------------------------------
    def reset(self, d_text: int | None = None) -> None:
        """Forget everything learnt (the text dimension too, unless given)."""
        super().reset()
        self.d_text = d_text or 0
        self.text_encoder: dict[str, Any] = {}
        self.net = self._new_net(self.d_text)

    def _new_net(self, d_text: int) -> HybridMF:
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7_919)
        return HybridMF(0, 0, cfg.dim, d_text, cfg.init_std, cfg.proj_init_std, proj_generator=gen).to(self.device)

    def _ingest(self, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        u, i = super()._ingest(pairs)
        if len(i):  # these items have interactions now: their ID rows count
            self.net.trained[torch.as_tensor(np.unique(i), device=self.device)] = True
        return u, i

    def add_items(
        self, item_ids: Sequence[str], vectors: np.ndarray, encoder: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Register text vectors for items (new ids are appended with zero ID rows: cold items,
        scored from text alone until they get interactions); returns their indices.

        The first call fixes d_text (the projection is created then); later vectors must match it,
        and, when `encoder` (the meta of `training.text.encode_items`: name, version, dim, fields,
        text format) is given, come from the same feature space. A known item's text row is
        overwritten (its ID row is not touched)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(item_ids):
            raise ValueError("vectors must be (len(item_ids), d_text)")
        if encoder:
            enc = dict(encoder)
            if self.text_encoder and self.text_encoder != enc:
                raise ValueError(f"text from {enc}, model was built with {self.text_encoder}")
            self.text_encoder = enc
        if self.d_text == 0:
            self._set_text_dim(vectors.shape[1])
        if vectors.shape[1] != self.d_text:
            raise ValueError(f"text dim {vectors.shape[1]} != model's {self.d_text}")
        idx = self.items.add(list(item_ids))
        self.net.grow(len(self.users), len(self.items), zero_items=True)
        self.net.text[torch.as_tensor(idx, device=self.device)] = torch.as_tensor(vectors, device=self.device)
        return idx

    def _set_text_dim(self, d_text: int) -> None:
        """Give an ID-only net (built before any text arrived) a text table and a projection."""
        old = self.net
        net = self._new_net(d_text)
        net.users = torch.nn.Parameter(old.users.detach())
        net.items = torch.nn.Parameter(old.items.detach())
        net.text = old.text.new_zeros(old.items.shape[0], d_text)
        net.trained = old.trained.clone()
        self.net, self.d_text = net.to(self.device), d_text

    # ---- training ----------------------------------------------------------------------------
    def _id_part(self, i: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """m_i e_i of the batch items (0 for untrained items and, when given, dropped ones)."""
        e = self.net.items[i]
        mask = self.net.trained[i, None].to(e.dtype)
        if keep is not None:
            mask = mask * keep
        return e * mask

    def pair_loss(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, epoch: int) -> torch.Tensor:
        """BPR (+ L2) of the batch, plus λ·BPR at the adversarial perturbation when adversarial."""
        cfg = self.config
        n = len(i)
        keep_i = keep_j = None
        if cfg.id_dropout > 0:
            g = self._drop_gen
            keep_i = (torch.rand(n, 1, generator=g) >= cfg.id_dropout).float().to(self.device)
            keep_j = (torch.rand(n, 1, generator=g) >= cfg.id_dropout).float().to(self.device)
        both = torch.cat([i, j])
        uniq, inv = torch.unique(both, return_inverse=True)
        z_rows = self.net.text_part(uniq)  # W t for each distinct batch item, once
        z = z_rows[inv]
        zi, zj = z[:n], z[n:]
        pu, ei, ej = self.net.users[u], self._id_part(i, keep_i), self._id_part(j, keep_j)
        qi, qj = ei + zi, ej + zj
        loss = bpr_loss(pu, qi, qj) + cfg.reg * (pu.square().sum(-1) + ei.square().sum(-1) + ej.square().sum(-1)).mean()
        if self.d_text:
            loss = loss + cfg.reg_text * (zi.square().sum(-1) + zj.square().sum(-1)).mean()
        if not cfg.adversarial or epoch < self._adv_from or cfg.reg_adv == 0:
            return loss
        du, d_i, d_j = self.perturbation(u, i, j, pu, qi, qj, keep_i, keep_j, (uniq, inv, z_rows))
        # the same gathered rows serve both losses, as in APRRecommender (one scatter per table in backward)
        return loss + cfg.reg_adv * bpr_loss(pu + du, ei + zi + d_i, ej + zj + d_j)

    @torch.no_grad()
    def perturbation(
        self,
        u: torch.Tensor,
        i: torch.Tensor,
        j: torch.Tensor,
        pu: torch.Tensor,
        qi: torch.Tensor,
        qj: torch.Tensor,
        keep_i: torch.Tensor | None = None,
        keep_j: torch.Tensor | None = None,
        items: tuple | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Δ of the batch's user rows and of its positive / negative item vectors.

        Fast-gradient direction per table row (gradient summed over the row's occurrences in the
        batch, closed form as in `APRRecommender.perturbation`); an item's step is the sum of the
        step of its ID part (ε·‖m_i e_i‖, 0 when dropped or untrained) and of its projected text
        part (ε·‖W t_i‖); with `adv_scale="vector"` it is ε·‖q_i‖ (q_i as the batch used it).
        Relative mode; absolute mode uses ε for each part (for the vector with "vector")."""
        cfg = self.config
        relative = cfg.eps_mode == "relative"
        if cfg.adv_scale == "vector":
            return self._vector_perturbation(u, i, j, pu, qi, qj, relative)
        p, a, b = pu.detach().float(), qi.detach().float(), qj.detach().float()
        w = torch.sigmoid(-(p * (a - b)).sum(-1, keepdim=True))
        gu, gq = -w * (a - b), torch.cat([-w * p, w * p])
        uu, inv_u, dir_u = _row_direction(gu, u)
        step_u = cfg.eps * dir_u
        if relative:
            step_u = step_u * self.net.users[uu].detach().float().norm(dim=1, keepdim=True)
        if items is None:
            uniq, inv = torch.unique(torch.cat([i, j]), return_inverse=True)
            z_rows = self.net.text_part(uniq)
        else:
            uniq, inv, z_rows = items
        summed = torch.zeros(len(uniq), gq.shape[1], dtype=gq.dtype, device=gq.device)
        summed.index_add_(0, inv, gq)
        step = cfg.eps * F.normalize(summed, dim=1)
        if relative:
            e_norm = (self.net.items[uniq] * self.net.trained[uniq, None]).detach().float().norm(dim=1, keepdim=True)
            d_id = step * e_norm
            d_txt = step * z_rows.detach().float().norm(dim=1, keepdim=True) if self.d_text else None
        else:
            d_id = step * self.net.trained[uniq, None]
            d_txt = step if self.d_text else None
        n = len(i)
        d_id = d_id[inv]
        d_i, d_j = d_id[:n], d_id[n:]
        if keep_i is not None:  # a dropped ID part is absent, so it is not perturbed either
            d_i, d_j = d_i * keep_i, d_j * keep_j
        if d_txt is not None:
            d_txt = d_txt[inv]
            d_i, d_j = d_i + d_txt[:n], d_j + d_txt[n:]
        return step_u[inv_u].detach(), d_i.detach(), d_j.detach()

    def _vector_perturbation(
        self,
        u: torch.Tensor,
        i: torch.Tensor,
        j: torch.Tensor,
        pu: torch.Tensor,
        qi: torch.Tensor,
        qj: torch.Tensor,
        relative: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Δ with each item moved by ε·‖q_i‖: APR's `adversarial_delta` on the effective vectors."""
        eps = self.config.eps
        p, a, b = pu.detach().float(), qi.detach().float(), qj.detach().float()
        w = torch.sigmoid(-(p * (a - b)).sum(-1, keepdim=True))
        du = adversarial_delta(-w * (a - b), u, p, eps, relative)
        dq = adversarial_delta(torch.cat([-w * p, w * p]), torch.cat([i, j]), torch.cat([a, b]), eps, relative)
        n = len(i)
        return du.detach(), dq[:n].detach(), dq[n:].detach()

    def _active_items(self) -> np.ndarray:
        return np.flatnonzero(self.net.trained.cpu().numpy()).astype(np.int64)

    def _trainable(self) -> list[torch.nn.Parameter]:
        return [self.net.users, self.net.items] + ([self.net.proj] if self.d_text else [])

    def _sample(self, u: np.ndarray, i: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return sample_triples_among(u, i, self.seen, self._active_items(), rng)

    def _train(self, u: np.ndarray, i: np.ndarray, epochs: int, first_epoch: int = 0) -> None:
        self._drop_gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.rounds + 104_729)
        super()._train(u, i, epochs, first_epoch)

    def fit(
        self,
        interactions: pd.DataFrame,
        epochs: int | None = None,
        item_ids: Sequence[str] | None = None,
        item_vectors: np.ndarray | None = None,
        encoder: dict[str, Any] | None = None,
    ) -> HybridRecommender:
        """Train from scratch on interactions (user, item[, rating, timestamp]) and item text vectors
        (`item_ids[k]` has `item_vectors[k]`; catalog items without interactions become cold items).
        APR: the first `warmup` share of the epochs is plain BPR, as in `APRRecommender.fit`."""
        epochs = self.config.epochs if epochs is None else epochs
        self.reset(d_text=None if item_vectors is None else np.asarray(item_vectors).shape[1])
        u, i = self._ingest(implicit_pairs(interactions, self.config.min_rating))
        if item_ids is not None and item_vectors is not None:
            self.add_items(item_ids, item_vectors, encoder)
        self._adv_from = int(round(self.config.warmup * epochs)) if self.config.adversarial else 0
        try:
            self._train(u, i, epochs)
        finally:
            self._adv_from = 0
        return self

    def train_round(
        self,
        new: pd.DataFrame,
        history: pd.DataFrame | None = None,
        quarantined_users: set[str] = frozenset(),
        epochs: int = 1,
        item_ids: Sequence[str] | None = None,
        item_vectors: np.ndarray | None = None,
        encoder: dict[str, Any] | None = None,
    ) -> dict[str, float]:
        """Warm-start update, as `BPRRecommender.train_round`, plus optional new/updated item text.
        Old rows and W are kept; new users/items append rows; the adversary is on from epoch 1."""
        self._round_text = (item_ids, item_vectors, encoder)
        try:
            return super().train_round(new, history, quarantined_users, epochs)
        finally:
            self._round_text = None

    def _before_round(self) -> None:
        item_ids, item_vectors, encoder = self._round_text or (None, None, None)
        if item_ids is not None and item_vectors is not None:
            self.add_items(item_ids, item_vectors, encoder)

    # ---- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def item_table(self) -> torch.Tensor:
        """(n_items, dim) float32 effective item vectors q_i (cold items: W t_i)."""
        return self.net.item_vectors().detach().float()

    def _item_matrix(self) -> torch.Tensor:
        return self.item_table()

    def as_mf(self, item_ids: Sequence[str] | None = None) -> BPRRecommender:
        """A frozen `BPRRecommender` whose item rows are the effective q_i (optionally only the given
        items, in that order): lets `training.evaluation` (FGSM included) evaluate the hybrid exactly
        as it evaluates an ID-only model."""
        mf = BPRRecommender(device=str(self.device))
        mf.users = Vocabulary(self.users.ids)
        q = self.item_table()
        if item_ids is None:
            mf.items, rows = Vocabulary(self.items.ids), np.arange(len(self.items))
        else:
            rows = self.items.lookup(list(item_ids))
            if (rows < 0).any():
                raise KeyError("unknown item ids")
            mf.items = Vocabulary(list(item_ids))
        net = MatrixFactorization(0, 0, self.config.dim, self.config.init_std)
        net.users = torch.nn.Parameter(self.net.users.detach().float().clone())
        net.items = torch.nn.Parameter(q[torch.as_tensor(rows, device=q.device)].clone())
        mf.net = net.to(self.device)
        remap = np.full(len(self.items), -1, np.int64)
        remap[rows] = np.arange(len(rows))
        su, si = self.seen.users, remap[self.seen.items]
        mf.seen = PairSet(su[si >= 0], si[si >= 0])
        return mf

    # ---- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """BPR's state (its tables here: ID rows, W, text rows, trained mask) plus the text meta."""
        return {**super().state(), "d_text": self.d_text, "text_encoder": dict(self.text_encoder)}

    def _restore_net(self, state: dict[str, Any]) -> None:
        self.reset(d_text=int(state["d_text"]))
        self.text_encoder = dict(state["text_encoder"])
        tables, net = state["state_dict"], self.net
        net.users = torch.nn.Parameter(tables["users"])
        net.items = torch.nn.Parameter(tables["items"])
        net.proj = torch.nn.Parameter(tables["proj"])
        net.text, net.trained = tables["text"], tables["trained"]
        self.net = net.to(self.device)
