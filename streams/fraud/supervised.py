"""Semi-supervised detection from analysts' labels: a per-user feature table and a gradient-boosted model.

`user_features` builds one row per user from a `FraudDetector`'s state: the detector's own
evidence (selection lam / T, DegSim, consensus correlation, target links, unsupervised score),
the classic profile features of the literature (RDMA, WDMA, WDA, LengthVar, MeanVar, FMTD after
Chirita et al. 2005 and Mobasher et al. 2007; MUD / RUD / QUD of DegreeSAD, Li et al. 2016) and
plain rating and purchase statistics. No feature looks at rating granularity or at timing.

The model is LightGBM's `LGBMClassifier` (scikit-learn's `HistGradientBoostingClassifier` with
kind="hgb"); `cross_validate` is SDLib's protocol (stratified k-fold, label at probability 0.5).

In the stream, labels arrive one by one (`LabelBook.update`), and `LabelModel.refit(detector,
book)` returns a review priority per user. The blend rule, because a few labels are weak (with
20 labelled attackers a 50/50 average was *worse* than the unsupervised score alone on FilmTrust):
the model never clears or sets a flag, which stays the unsupervised detector's; it only ranks the
review queue, with priority = max(unsupervised score, w·p + (1 − w)·unsupervised score), w = 0.5,
so no user ranks lower than its unsupervised score, and users who resemble confirmed fraud rise.
Labelled users get their label (1.0 or 0.0): an analyst's word outranks both. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FEATURES",
    "user_features",
    "make_model",
    "prf",
    "cross_validate",
    "blend",
    "few_labels",
    "LabelBook",
    "LabelModel",
]

FEATURES = (
    "size",
    "mean_llr",
    "lam",
    "t",
    "degsim",
    "sim_z",
    "cons",
    "cons_z",
    "unsup_score",
    "n_targets",
    "rdma",
    "wdma",
    "wda",
    "length_var",
    "mean_var",
    "fmtd",
    "mud",
    "rud",
    "qud",
    "r_mean",
    "r_sd",
    "share_top",
    "share_bottom",
    "dev_mean",
    "purchases",
    "purchase_share",
)
_EVIDENCE = ("size", "mean_llr", "lam", "t", "degsim", "sim_z", "cons", "cons_z")


def _rating_row(vals: np.ndarray, counts: np.ndarray, means: np.ndarray, lo: float, hi: float) -> dict:
    dev = np.abs(vals - means)
    top = vals == vals.max()
    return {
        "rdma": float((dev / counts).mean()),
        "wdma": float((dev / counts**2).mean()),
        "wda": float((dev / counts).sum()),
        "dev_mean": float(dev.mean()),
        "r_mean": float(vals.mean()),
        "r_sd": float(vals.std()),
        "share_top": float((vals == hi).mean()) if hi == hi else np.nan,
        "share_bottom": float((vals == lo).mean()) if lo == lo else np.nan,
        "mean_var": float(((vals[~top] - means[~top]) ** 2).mean()) if (~top).any() else 0.0,
        "fmtd": float(abs(vals[top].mean() - vals[~top].mean())) if (~top).any() else 0.0,
    }


def user_features(det, users: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(users, matrix users × FEATURES) from a `FraudDetector`'s state (NaN where undefined)."""
    items = det.items
    counts = items.view("actors")
    r_n, r_sum = items.view("r_n"), items.view("r_sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(r_n > 0, r_sum / np.maximum(r_n, 1), np.nan)
    lo, hi = det.bounds()
    users = list(det.users) if users is None else list(users)
    sizes = np.array([len(det.users[u].items) for u in users], float)
    mean_len = sizes.mean() if len(sizes) else 0.0
    ss_len = float(((sizes - mean_len) ** 2).sum()) or 1.0
    rows = []
    for uid, n in zip(users, sizes):
        u = det.users[uid]
        idx = np.fromiter((items.index[i] for i in u.items), dtype=np.int64, count=len(u.items))
        vals = np.fromiter(u.items.values(), dtype=float, count=len(u.items))
        deg = np.sort(counts[idx])
        row = {k: u.feats.get(k, np.nan) for k in _EVIDENCE}
        row.update(size=n, unsup_score=u.score, n_targets=sum(1 for r in u.reasons if ":" in r))
        if len(deg):
            row.update(mud=float(deg.mean()), rud=float(deg[-1] - deg[0]), qud=float(deg[int((len(deg) - 1) / 4)]))
        row["length_var"] = abs(n - mean_len) / ss_len
        row["purchases"] = float(len(u.bought))
        row["purchase_share"] = len(u.bought) / n if n else np.nan
        rated = vals == vals
        if rated.sum() >= 2:
            row.update(_rating_row(vals[rated], r_n[idx[rated]], means[idx[rated]], lo, hi))
        rows.append([row.get(k, np.nan) for k in FEATURES])
    return users, np.array(rows, float).reshape(len(users), len(FEATURES))


def make_model(kind: str = "lgbm", seed: int = 0):
    """A fresh classifier: LightGBM (default) or scikit-learn's histogram gradient boosting ("hgb")."""
    if kind == "lgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            n_estimators=300,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=5,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=seed)


def prf(y: np.ndarray, pred: np.ndarray) -> dict:
    """Precision, recall, F1, FPR of binary predictions."""
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    tp, fp, fn = int((y & pred).sum()), int((~y & pred).sum()), int((y & ~pred).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "fpr": fp / max(int((~y).sum()), 1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, kind: str = "lgbm") -> dict:
    """Stratified k-fold: each user predicted by a model that never saw its label; label at p >= 0.5."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, bool)
    if min(int(y.sum()), int((~y).sum())) < folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {folds} attackers and {folds} genuine users")
    proba = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = make_model(kind, seed)
        model.fit(x[train], y[train])
        proba[test] = model.predict_proba(x[test])[:, 1]
    return {**prf(y, proba >= 0.5), "proba": proba}


def blend(proba: np.ndarray, unsup: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """Review priority: max(unsupervised score, weight·p + (1 − weight)·unsupervised score)."""
    return np.maximum(unsup, weight * proba + (1 - weight) * unsup)


def few_labels(
    x: np.ndarray, y: np.ndarray, unsup: np.ndarray, n_pos: int = 20, n_neg: int = 200, seed: int = 0, kind="lgbm"
) -> dict:
    """Train on n_pos confirmed attackers + n_neg confirmed genuine; score the others three ways.

    Returns the metrics (at 0.5) of the model alone, the unsupervised score alone, a plain 50/50
    average and the review `blend`, on the users whose labels were not used.
    """
    y = np.asarray(y, bool)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    pick = np.concatenate(
        [rng.choice(pos, min(n_pos, len(pos)), replace=False), rng.choice(neg, min(n_neg, len(neg)), replace=False)]
    )
    rest = np.setdiff1d(np.arange(len(y)), pick)
    model = make_model(kind, seed)
    model.fit(x[pick], y[pick])
    p = model.predict_proba(x[rest])[:, 1]
    return {
        "model": prf(y[rest], p >= 0.5),
        "unsupervised": prf(y[rest], unsup[rest] >= 0.5),
        "average": prf(y[rest], 0.5 * p + 0.5 * unsup[rest] >= 0.5),
        "blend": prf(y[rest], blend(p, unsup[rest]) >= 0.5),
        "labelled": len(pick),
        "scored": len(rest),
    }


@dataclass
class _Entry:
    label: int
    ts: float
    analyst: str


class LabelBook:
    """Analysts' labels as they arrive (`FraudLabel` records): the latest label per user wins (by ts)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def update(self, label) -> bool:
        """Fold one label (anything with user_id, label "fraud"|"genuine", analyst, ts); True if it changed the book."""
        if label.label not in ("fraud", "genuine"):
            raise ValueError(f"label must be 'fraud' or 'genuine', got {label.label!r}")
        y = 1 if label.label == "fraud" else 0
        old = self._entries.get(label.user_id)
        if old is not None and old.ts > label.ts:
            return False
        self._entries[label.user_id] = _Entry(y, float(label.ts), str(label.analyst))
        return old is None or old.label != y

    def labels(self) -> dict[str, int]:
        """user -> 1 (fraud) or 0 (genuine)."""
        return {u: e.label for u, e in self._entries.items()}

    def counts(self) -> tuple[int, int]:
        """(fraud, genuine) labels in the book."""
        fraud = sum(e.label for e in self._entries.values())
        return fraud, len(self._entries) - fraud

    def __len__(self) -> int:
        return len(self._entries)


class LabelModel:
    """A classifier over `user_features`, fitted on labelled users, used to rank the review queue.

    `fit(detector, labels)` trains when there are at least `min_each` labels of each class
    (otherwise the model stays unfitted and `predict` returns the unsupervised scores);
    `predict(detector)` gives p(fraud) per user; `review_scores` applies the blend rule of the
    module docstring; `refit(detector, book)` does fit + review_scores in one call.
    """

    def __init__(self, kind: str = "lgbm", seed: int = 0, min_each: int = 2, weight: float = 0.5):
        self.kind, self.seed, self.min_each, self.weight = kind, seed, min_each, weight
        self.model = None

    @property
    def fitted(self) -> bool:
        """Whether the last `fit` had enough labels of both classes to train."""
        return self.model is not None

    def fit(self, detector, labels: dict[str, int]) -> LabelModel:
        """Train on the labelled users the detector knows; unfitted if a class has fewer than `min_each`."""
        users = [u for u in labels if u in detector.users]
        y = np.array([labels[u] == 1 for u in users], bool)
        _, x = user_features(detector, users)
        return self.fit_examples(x, y)

    def predict_rows(self, x: np.ndarray) -> np.ndarray:
        """p(fraud) of feature rows (the model must be fitted)."""
        if self.model is None:
            raise ValueError("the label model is not fitted")
        return self.model.predict_proba(x)[:, 1]

    def fit_examples(self, x: np.ndarray, y: np.ndarray) -> LabelModel:
        """Train on feature rows gathered elsewhere (e.g. replays of generated attacks); unfitted as `fit` is."""
        y = np.asarray(y, bool)
        self.model = None
        if min(int(y.sum()), int((~y).sum())) >= self.min_each:
            self.model = make_model(self.kind, self.seed)
            self.model.fit(x, y)
        return self

    def predict(self, detector, users: list[str] | None = None) -> dict[str, float]:
        """p(fraud) per user (the unsupervised score while the model is unfitted)."""
        names, x = user_features(detector, users)
        if self.model is None or not names:
            return {u: float(detector.users[u].score) for u in names}
        return dict(zip(names, self.model.predict_proba(x)[:, 1].tolist()))

    def review_scores(self, detector, labels: dict[str, int] | None = None) -> dict[str, float]:
        """Review priority per user: labelled users their label, the others the blend rule."""
        proba = self.predict(detector)
        names = list(proba)
        unsup = np.array([detector.users[u].score for u in names])
        mixed = blend(np.array([proba[u] for u in names]), unsup, self.weight) if self.model is not None else unsup
        out = dict(zip(names, mixed.tolist()))
        for u, y in (labels or {}).items():
            if u in out:
                out[u] = float(y)
        return out

    def refit(self, detector, book: LabelBook) -> dict[str, float]:
        """Fit on the book's labels and return every user's review priority."""
        labels = book.labels()
        return self.fit(detector, labels).review_scores(detector, labels)
