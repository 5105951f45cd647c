"""Adversarial Personalized Ranking (He et al., SIGIR 2018): BPR(θ) + λ·BPR(θ + Δ_adv).

Δ_adv moves each user and item row that a batch touches by ε along the normalised gradient of the
batch's BPR loss (the fast-gradient direction that increases the loss most). With
`eps_mode="relative"` the step of a row is ε·‖row‖, matching the scale-free robustness check in
`training.evaluation`, so the model cannot buy robustness by inflating its norms. Pure torch: it
must never import Kafka or MLflow, and changes nothing of BPR but the loss (and `fit`'s warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
import torch.nn.functional as F

from training.models.mf import BPRRecommender, MFConfig, bpr_loss

__all__ = ["APRConfig", "APRRecommender", "adversarial_delta"]


@dataclass(frozen=True)
class APRConfig(MFConfig):
    """BPR hyper-parameters plus the adversary: ε, λ (reg_adv), ε's mode, and BPR warm-up share.

    Tuned on an ML-100K validation split (docs/training.md): the adversary regularises, so APR
    wants less L2 than BPR (1e-3 instead of 3e-3).
    """

    reg: float = 1e-3
    eps: float = 0.1
    reg_adv: float = 1.0
    eps_mode: str = "relative"
    warmup: float = 0.5


def adversarial_delta(
    grad: torch.Tensor, index: torch.Tensor, rows: torch.Tensor, eps: float, relative: bool
) -> torch.Tensor:
    """Per gathered row: ε·g/‖g‖ (×‖row‖ if relative), g summed over repeats of the same table row.

    `rows` are the table's rows at `index`, as the batch gathered them: only the batch's rows are
    read, whatever the table's size.
    """
    unique, inverse = torch.unique(index, return_inverse=True)
    summed = grad.new_zeros(len(unique), grad.shape[1]).index_add_(0, inverse, grad)
    direction = F.normalize(summed, dim=1).index_select(0, inverse)
    if relative:
        return direction * (eps * rows.norm(dim=1, keepdim=True))
    return direction * eps


class APRRecommender(BPRRecommender):
    """Matrix factorisation trained with adversarial personalized ranking."""

    kind: ClassVar[str] = "apr"
    config_class: ClassVar[type] = APRConfig
    _adv_from: int = 0  # first epoch with the adversary; set by `fit` for its BPR warm-up

    @torch.no_grad()
    def rows_perturbation(
        self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, pu: torch.Tensor, qi: torch.Tensor, qj: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The adversarial Δ of a batch's gathered rows pu, qi, qj (at indexes u, i, j); no graph."""
        cfg = self.config
        pu, qi, qj = pu.float(), qi.float(), qj.float()
        # Closed-form gradient of the BPR loss (up to the positive factor 1/batch, which the
        # normalisation removes): d/dx of softplus(-x) is -sigmoid(-x), x = pu·(qi - qj).
        diff = qi - qj
        w = torch.sigmoid(-(pu * diff).sum(-1, keepdim=True))
        gi = -w * pu  # gj = -gi
        # Users and items in one pass: item indexes shifted past the user table's rows.
        shift = self.net.users.shape[0]
        delta = adversarial_delta(
            torch.cat([-w * diff, gi, -gi]),
            torch.cat([u, i + shift, j + shift]),
            torch.cat([pu, qi, qj]),
            cfg.eps,
            cfg.eps_mode == "relative",
        )
        return delta.split(len(u))

    def perturbation(
        self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The adversarial Δ of the gathered user, positive and negative rows of a batch."""
        with torch.no_grad():
            return self.rows_perturbation(u, i, j, *self.gather(u, i, j))

    def pair_loss(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, epoch: int) -> torch.Tensor:
        """BPR loss plus λ times the BPR loss at the adversarially perturbed embeddings.

        One gather serves both terms, so the backward pass scatters each table's gradient once; the
        adversary adds one forward and backward of the BPR loss over the batch's rows, no more.
        """
        pu, qi, qj = self.gather(u, i, j)
        loss = self.rows_loss(pu, qi, qj)
        if epoch < self._adv_from or self.config.reg_adv == 0:
            return loss
        du, di, dj = self.rows_perturbation(u, i, j, pu, qi, qj)
        return loss + self.config.reg_adv * bpr_loss(pu + du, qi + di, qj + dj)

    def train_round(
        self,
        new: pd.DataFrame,
        history: pd.DataFrame | None = None,
        quarantined_users: set[str] = frozenset(),
        epochs: int = 1,
    ) -> dict[str, float]:
        """A warm-start round; a model that never trained starts with `fit`'s BPR warm-up (the tuned recipe)."""
        self._adv_from = int(round(self.config.warmup * epochs)) if self.rounds == 0 else 0
        try:
            return super().train_round(new, history, quarantined_users, epochs)
        finally:
            self._adv_from = 0

    def fit(self, interactions: pd.DataFrame, epochs: int | None = None) -> APRRecommender:
        """Train from scratch: the first `warmup` share of the epochs is plain BPR, the rest APR."""
        epochs = self.config.epochs if epochs is None else epochs
        self._adv_from = int(round(self.config.warmup * epochs))
        try:
            return super().fit(interactions, epochs)
        finally:
            self._adv_from = 0
