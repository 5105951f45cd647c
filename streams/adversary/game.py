"""The hardening game: the supervised detector and the generator take turns.

`HardenedDetector` is the defended detector: a user is flagged if the unsupervised `FraudDetector`
flags it OR a `LabelModel` (LightGBM over `user_features`) gives p(fraud) >= 0.5. The label model
learns from replays of genuine + attack data: heuristic attacks (random / average / bandwagon /
segment) from the start, plus a fresh generated attack every round. Genuine users are split into
`folds` by their original id and each is scored by the fold model that never saw it, so the FPR
is out-of-sample; the attackers it is measured on are always freshly generated (a seed never
trained on), so recall is out-of-sample too.

`play` runs the rounds. Each round: (detector's move) a fresh generated attack joins the training
examples and the label model is refitted; (measure) recall on another fresh generated attack and
on the heuristic measurement attacks, FPR on the genuine users, the unsupervised detector's recall
on the same fresh attack (the generator's evasion) and the surrogate's HR@50 gain of the generator
(its lift); (generator's move) `g_steps` more steps against its discriminator and the surrogate.
The generator does not see the label model: LightGBM is not differentiable, and its discriminator
is its stand-in for a detector that learns what real profiles look like.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from streams.adversary.learner import LearnedAttacker
from streams.fraud.config import DetectorConfig
from streams.fraud.detector import FraudDetector
from streams.fraud.evaluation import prepare, replay
from streams.fraud.supervised import LabelModel, user_features
from streams.sources.attacks import AttackPlan

__all__ = ["Replayed", "replay_plan", "HardenedDetector", "GameConfig", "play"]

BATCH = 500  # events per detector flush, as the worker's default


@dataclass
class Replayed:
    """One replay of genuine + one attack: per user its original id, label, unsupervised flag and features."""

    kind: str
    original: list[str]
    y: np.ndarray
    flags: np.ndarray
    x: np.ndarray

    def recall(self, flags: np.ndarray | None = None) -> float:
        f = self.flags if flags is None else flags
        return float(f[self.y].mean()) if self.y.any() else 0.0

    def fpr(self, flags: np.ndarray | None = None) -> float:
        f = self.flags if flags is None else flags
        return float(f[~self.y].mean()) if (~self.y).any() else 0.0


def replay_plan(ratings: pd.DataFrame, plan: AttackPlan, seed: int, config: DetectorConfig | None = None) -> Replayed:
    """Genuine rows + the plan's events, opaque ids, through the stream's detector (batches of 500, full rescore)."""
    prep = prepare(ratings, plans=[plan], seed=seed)
    det = FraudDetector(config)
    rep = replay(prep.frame, det, BATCH)
    users, x = user_features(det, sorted(rep.final_scores))
    return Replayed(
        plan.spec.kind,
        [prep.original[u] for u in users],
        np.array([u in prep.attackers for u in users], bool),
        np.array([u in rep.final_flagged for u in users], bool),
        x,
    )


class HardenedDetector:
    """Unsupervised flags OR a cross-fitted label model trained on replays of attacks."""

    def __init__(self, folds: int = 3, seed: int = 0, kind: str = "lgbm"):
        self.folds, self.seed, self.kind = folds, seed, kind
        self.examples: list[Replayed] = []
        self.models: list[LabelModel] = []

    def fold(self, user: str) -> int:
        return zlib.crc32(user.encode()) % self.folds

    def add(self, r: Replayed) -> None:
        self.examples.append(r)

    def fit(self) -> None:
        """One label model per fold, each trained without the genuine users of its fold (attackers: all)."""
        self.models = []
        for f in range(self.folds):
            xs, ys = [], []
            for r in self.examples:
                keep = r.y | np.array([self.fold(u) != f for u in r.original])
                xs.append(r.x[keep])
                ys.append(r.y[keep])
            self.models.append(LabelModel(self.kind, self.seed + f).fit_examples(np.vstack(xs), np.concatenate(ys)))

    def proba(self, r: Replayed) -> np.ndarray:
        """p(fraud) per user of a replay, each from the fold model that never saw that (genuine) user."""
        out = np.zeros(len(r.y))
        folds = np.array([self.fold(u) for u in r.original])
        for f, model in enumerate(self.models):
            rows = folds == f
            if rows.any() and model.fitted:
                out[rows] = model.predict_rows(r.x[rows])
        return out

    def flags(self, r: Replayed) -> np.ndarray:
        return r.flags | (self.proba(r) >= 0.5)

    def measure(self, r: Replayed) -> dict:
        f = self.flags(r)
        return {"recall": r.recall(f), "fpr": r.fpr(f)}

    def training_rows(self) -> dict[str, int]:
        """Attackers in the training examples, by kind."""
        out: dict[str, int] = {}
        for r in self.examples:
            out[r.kind] = out.get(r.kind, 0) + int(r.y.sum())
        return out


@dataclass(frozen=True)
class GameConfig:
    rounds: int = 4
    g_steps: int = 50  # generator steps per generator move
    seed: int = 50_000  # seeds of the game's generated attacks: seed + 2 * round (+1 to measure)
    folds: int = 3


@dataclass
class GameResult:
    detector: HardenedDetector
    curves: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _surrogate_gain(attacker: LearnedAttacker, targets: list[int], seed: int) -> float:
    """The generator's lift under its own surrogate: HR@50 gain, averaged over targets."""
    gains = []
    for k, t in enumerate(targets):
        profiles, _ = attacker.generate(None, [t], seed + k)
        gains.append(attacker.surrogate.hit_rate(profiles > 0, t) - attacker.surrogate.clean_hit_rate(t))
    return float(np.mean(gains))


def play(
    ratings: pd.DataFrame,
    attacker: LearnedAttacker,
    heuristic_train: list[Replayed],
    heuristic_measure: dict[str, list[Replayed]],
    targets: list[str],
    config: GameConfig | None = None,
    on_round: Callable[[dict], None] | None = None,
) -> GameResult:
    """Alternate detector and generator moves (module doc); `on_round(figures)` after each round's measurement.

    `heuristic_train`: replays the label model starts from; `heuristic_measure`: {kind: replays} it is
    measured on (other seeds); `targets`: item ids the generated attacks push (one per attack, in turn).
    """
    cfg = config or GameConfig()
    start = time.perf_counter()
    H = HardenedDetector(cfg.folds, cfg.seed)
    for r in heuristic_train:
        H.add(r)
    H.fit()
    result = GameResult(H)
    target_idx = [int(i) for i in attacker.data.index(targets)]

    def fresh(seed: int) -> Replayed:
        target = targets[seed % len(targets)]
        return replay_plan(ratings, attacker.plan([target], seed), seed)

    for rnd in range(cfg.rounds + 1):
        if rnd > 0:  # the detector's move: learn from a fresh generated attack
            H.add(fresh(cfg.seed + 2 * rnd))
            H.fit()
        probe = fresh(cfg.seed + 2 * rnd + 1)
        measured = H.measure(probe)
        genuine_fpr = [measured["fpr"]] + [H.measure(r)["fpr"] for rs in heuristic_measure.values() for r in rs]
        figures = {
            "round": rnd,
            "recall_gan": measured["recall"],
            "fpr": float(np.max(genuine_fpr)),
            "recall_gan_unsupervised": probe.recall(),
            "evasion_unsupervised": 1.0 - probe.recall(),
            "generator_surrogate_lift": _surrogate_gain(attacker, target_idx, cfg.seed + 100 * rnd),
            **{
                f"recall_{kind}": float(np.mean([H.measure(r)["recall"] for r in rs]))
                for kind, rs in heuristic_measure.items()
            },
            "generator_steps": attacker.steps_done,
            "seconds": time.perf_counter() - start,
        }
        result.curves.append(figures)
        if on_round is not None:
            on_round(figures)
        if rnd < cfg.rounds:  # the generator's move
            attacker.train(cfg.g_steps, tag=f"game-{rnd + 1}")
    result.seconds = time.perf_counter() - start
    return result
