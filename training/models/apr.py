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
    grad: torch.Tensor, index: torch.Tensor, table: torch.Tensor, eps: float, relative: bool
) -> torch.Tensor:
    """Per gathered row: ε·g/‖g‖ (×‖row‖ if relative), g summed over repeats of the same table row."""
    unique, inverse = torch.unique(index, return_inverse=True)
    summed = torch.zeros(len(unique), grad.shape[1], dtype=grad.dtype, device=grad.device)
    summed.index_add_(0, inverse, grad)
    step = eps * F.normalize(summed, dim=1)
    if relative:
        step = step * table[unique].detach().norm(dim=1, keepdim=True)
    return step[inverse].detach()


class APRRecommender(BPRRecommender):
    """Matrix factorisation trained with adversarial personalized ranking."""

    kind: ClassVar[str] = "apr"
    config_class: ClassVar[type] = APRConfig
    _adv_from: int = 0  # first epoch with the adversary; set by `fit` for its BPR warm-up

    def perturbation(
        self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The adversarial Δ of the gathered user, positive and negative rows of a batch."""
        cfg = self.config
        with torch.no_grad():
            pu, qi, qj = self.net.users[u].float(), self.net.items[i].float(), self.net.items[j].float()
            # Closed-form gradient of the BPR loss (up to the positive factor 1/batch, which the
            # normalisation removes): d/dx of softplus(-x) is -sigmoid(-x), x = pu·(qi - qj).
            w = torch.sigmoid(-(pu * (qi - qj)).sum(-1, keepdim=True))
            gu, gi, gj = -w * (qi - qj), -w * pu, w * pu
        relative = cfg.eps_mode == "relative"
        du = adversarial_delta(gu, u, self.net.users, cfg.eps, relative)
        dq = adversarial_delta(torch.cat([gi, gj]), torch.cat([i, j]), self.net.items, cfg.eps, relative)
        return du, dq[: len(i)], dq[len(i) :]

    def pair_loss(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, epoch: int) -> torch.Tensor:
        """BPR loss plus λ times the BPR loss at the adversarially perturbed embeddings."""
        loss = super().pair_loss(u, i, j, epoch)
        if epoch < self._adv_from or self.config.reg_adv == 0:
            return loss
        du, di, dj = self.perturbation(u, i, j)
        pu, qi, qj = self.net.users[u], self.net.items[i], self.net.items[j]
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
