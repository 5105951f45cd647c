"""Generator and discriminator of fake user profiles, with discrete straight-through outputs.

Generator (in the spirit of AUSH and Leg-UP: conditioned on a template, a sampled real profile):
- input: the template (which items, which ratings), the target item's surrogate embedding, noise;
- item selection: logits over the catalogue (the template's items only, never the target), a
  Gumbel-top-k sample of exactly `n_fill` items, relaxed for the backward pass by k successive
  softmaxes (Xie & Ermon 2019); the forward pass is the hard k-hot set;
- ratings: per item, logits over the data's rating grid = a learned head + `anchor` x the
  template's own rating (one-hot), sampled by straight-through Gumbel-softmax, so every profile is
  discrete and on the scale by construction;
- the target is added at the top rating outside the network (as the heuristic attacks do).

Discriminator: an MLP over (selection mask, rating / top) of the filler part only: the target is
fixed by the attack and would give the game away without teaching the generator anything.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Generator", "Discriminator", "relaxed_topk", "gumbel"]

NEG = -1e9


def gumbel(shape, gen: torch.Generator | None, device=None) -> torch.Tensor:
    """Standard Gumbel noise (seeded by `gen`)."""
    u = torch.rand(shape, generator=gen, device=device).clamp(1e-10, 1 - 1e-10)
    return -torch.log(-torch.log(u))


def relaxed_topk(scores: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Straight-through k-hot: the hard top-k of `scores` forward, k successive softmaxes backward."""
    khot = torch.zeros_like(scores)
    onehot = torch.zeros_like(scores)
    a = scores
    for _ in range(k):
        a = a + torch.log((1.0 - onehot).clamp_min(1e-20))
        onehot = torch.softmax(a / tau, dim=-1)
        khot = khot + onehot
    idx = torch.topk(scores, k, dim=-1).indices
    hard = torch.zeros_like(scores).scatter_(-1, idx, 1.0)
    return hard - khot.detach() + khot


class Generator(nn.Module):
    """Template-conditioned generator of discrete filler profiles."""

    def __init__(
        self,
        n_items: int,
        grid: torch.Tensor,
        item_emb: torch.Tensor,
        hidden: int = 128,
        noise: int = 16,
        anchor: float = 6.0,
        item_prior: torch.Tensor | None = None,
    ):
        super().__init__()
        self.n_items, self.noise = n_items, noise
        self.register_buffer("grid", grid.float())
        self.register_buffer("item_emb", item_emb.float())
        g = len(grid)
        self.enc = nn.Linear(2 * n_items, hidden)
        self.tproj = nn.Linear(item_emb.shape[1], hidden)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden + noise, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.sel = nn.Linear(hidden, n_items)
        # learned; starts at `item_prior` (e.g. a popularity prior over the template's items) or zero
        self.item_bias = nn.Parameter(torch.zeros(n_items) if item_prior is None else item_prior.float().clone())
        self.rate = nn.Linear(hidden, n_items * g)
        self.rate_bias = nn.Parameter(torch.zeros(n_items, g))
        self.anchor = nn.Parameter(torch.tensor(float(anchor)))
        # Heads start at zero: the untrained generator is AUSH's sampling (a random subset of a real profile).
        for lin in (self.sel, self.rate):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(
        self,
        template: torch.Tensor,
        targets: torch.Tensor,
        n_fill: int,
        gen: torch.Generator | None = None,
        tau: float = 0.3,
        tau_r: float = 0.5,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, values): W the straight-through k-hot selection, values the straight-through ratings (all items)."""
        B, dev = template.shape[0], template.device
        mask = (template > 0).float()
        x = torch.cat([mask, template / self.grid[-1]], 1)
        z = torch.randn(B, self.noise, generator=gen, device=dev)
        h = torch.cat([F.relu(self.enc(x)), F.relu(self.tproj(self.item_emb[targets])), z], 1)
        h = self.mlp(h)
        logits = self.sel(h) + self.item_bias
        allowed = mask.clone()
        allowed[torch.arange(B, device=dev), targets] = 0.0
        logits = torch.where(allowed > 0, logits, torch.full_like(logits, NEG))
        W = relaxed_topk(logits + gumbel(logits.shape, gen, dev), n_fill, tau)
        G = len(self.grid)
        r_logits = self.rate(h).view(B, self.n_items, G) + self.rate_bias
        tmpl_idx = torch.bucketize(template, self.grid).clamp(0, G - 1)
        r_logits = r_logits + self.anchor * F.one_hot(tmpl_idx, G).float() * mask[..., None]
        y_soft = torch.softmax((r_logits + gumbel(r_logits.shape, gen, dev)) / tau_r, -1)
        y_hard = F.one_hot(y_soft.argmax(-1), G).float()
        y = y_hard - y_soft.detach() + y_soft
        return W, y @ self.grid


class Discriminator(nn.Module):
    """Real vs generated filler profiles (logit: real)."""

    def __init__(self, n_items: int, hidden: int = 256, top: float = 5.0):
        super().__init__()
        self.top = top
        self.net = nn.Sequential(
            nn.Linear(2 * n_items, hidden),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
            nn.Linear(hidden, 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, 1),
        )

    def forward(self, W: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([W, V / self.top], 1)).squeeze(-1)
