"""PNG figures of the hardening game and of the generator's training (headless matplotlib; no MLflow here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are written as PNG files only

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["game_plot", "training_plot"]


def game_plot(curves: Sequence[dict], path: Path) -> Path:
    """Per round: hardened recall on fresh generated profiles, FPR, heuristic recall, evasion, surrogate lift."""
    rounds = [c["round"] for c in curves]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    left.plot(rounds, [c["recall_gan"] for c in curves], marker="o", label="hardened recall, fresh gan")
    left.plot(rounds, [c["recall_gan_unsupervised"] for c in curves], marker=".", label="unsupervised recall, gan")
    for key in sorted(k for k in curves[0] if k.startswith("recall_") and k[7:] not in ("gan", "gan_unsupervised")):
        left.plot(rounds, [c[key] for c in curves], linestyle="--", label=f"hardened recall, {key[7:]}")
    left.plot(rounds, [c["fpr"] for c in curves], marker="x", color="black", label="FPR (genuine, out-of-fold)")
    left.set_xlabel("round")
    left.set_ylim(-0.05, 1.05)
    left.set_title("detector")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.plot(rounds, [c["generator_surrogate_lift"] for c in curves], marker="o", label="surrogate HR@50 gain")
    right.plot(rounds, [c["evasion_unsupervised"] for c in curves], marker=".", label="evasion of the unsupervised")
    right.set_xlabel("round")
    right.set_title("generator")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def training_plot(history: Sequence[dict], path: Path) -> Path:
    """The generator's losses, discriminator loss and smooth surrogate HR@50 over its steps."""
    steps = [h["step"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), dpi=100)
    for key in ("attack_loss", "adv_loss", "d_loss"):
        left.plot(steps, [h[key] for h in history], label=key)
    left.set_xlabel("generator step")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.plot(steps, [h["surrogate_hr"] for h in history], label="smooth surrogate HR@50")
    right.plot(steps, [h["d_fooled"] for h in history], label="share of fakes D calls real")
    right.set_xlabel("generator step")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
