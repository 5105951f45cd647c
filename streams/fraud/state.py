"""State of the streaming detector, split the way a stream would partition it.

`UserState` is per user (key = user id): the profile and the last verdict. `ItemTable` is per
item (key = item id) and holds only sums a stream can keep in item-partitioned state: distinct
actors, rating count / sum / sum of squares / histogram, distinct buyers. Its rater lists and
newcomer counts are indexes derived from the user profiles (rebuilt on restore, never snapshotted).
Everything round-trips through JSON-able dicts. Plain data: it must never import faust, kafka or mlflow.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["UserState", "ItemTable"]

NAN = float("nan")


class UserState:
    """One account: its items (value or NaN for clicks), purchases, event count, first/last ts, verdict."""

    __slots__ = (
        "items",
        "bought",
        "n_events",
        "first_ts",
        "last_ts",
        "scored_size",
        "feats",
        "score",
        "reported",
        "flagged",
        "reasons",
        "lenient",
        "extremes",
        "swarm",
    )

    def __init__(self, ts: float = 0.0):
        self.items: dict[str, float] = {}
        self.bought: dict[str, int] = {}
        self.n_events = 0
        self.first_ts = ts
        self.last_ts = ts
        self.scored_size = 0
        self.feats: dict[str, float] = {}
        self.score = 0.0
        # the score of the last verdict `flush` reported: a move is measured from it, not from the last
        # rescore, or many small moves would never be reported and the published score would drift
        self.reported = 0.0
        self.flagged = False
        self.reasons: list[str] = []
        self.lenient = False
        self.extremes: list[list] = []  # [item, +1 | -1]: top/bottom ratings and purchases, as of the last rescore
        self.swarm: str | None = None  # a swarmed item the account touched as a newcomer (the trust gate holds it)

    def to_dict(self) -> dict:
        """JSON-able form (NaN values of click-only items are written as null)."""
        return {
            "items": {i: (None if v != v else v) for i, v in self.items.items()},
            "bought": dict(self.bought),
            "n_events": self.n_events,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "scored_size": self.scored_size,
            "feats": {k: (None if v != v else v) for k, v in self.feats.items()},
            "score": self.score,
            "reported": self.reported,
            "flagged": self.flagged,
            "reasons": list(self.reasons),
            "lenient": self.lenient,
            "extremes": [list(e) for e in self.extremes],
            "swarm": self.swarm,
        }

    @classmethod
    def from_dict(cls, d: dict) -> UserState:
        """Inverse of `to_dict`."""
        u = cls()
        u.items = {i: (NAN if v is None else float(v)) for i, v in d["items"].items()}
        u.bought = {i: int(c) for i, c in d["bought"].items()}
        u.n_events, u.first_ts, u.last_ts = int(d["n_events"]), float(d["first_ts"]), float(d["last_ts"])
        u.scored_size = int(d["scored_size"])
        u.feats = {k: (NAN if v is None else float(v)) for k, v in d["feats"].items()}
        u.score, u.flagged, u.reasons, u.lenient = (
            float(d["score"]),
            bool(d["flagged"]),
            list(d["reasons"]),
            bool(d["lenient"]),
        )
        u.reported = float(d.get("reported", u.score))  # absent in states written before it was kept
        u.extremes = [[str(i), int(x)] for i, x in d["extremes"]]
        u.swarm = d.get("swarm")  # absent in states written before swarms were tracked
        return u


class ItemTable:
    """Per-item sums in growable numpy arrays, keyed by item id (insertion order gives the index)."""

    FIELDS = ("actors", "r_n", "r_sum", "r_sq", "buyers")

    def __init__(self, capacity: int = 1024):
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.arr = {f: np.zeros(capacity) for f in self.FIELDS}
        self.hist: list[dict[float, int]] = []  # rating value -> count, per item
        self.raters: list[list[int]] = []  # derived index: user indices that interacted with the item
        self.newcomers: list[int] = []  # derived: how many of the item's actors are newcomers now
        # numpy copies of `raters`, filled lazily: each has room to grow, so a rater added since
        # the last copy is written at the end instead of the whole array being copied again
        self._rater_arrays: list[np.ndarray] = []
        self._rater_copied: list[int] = []  # how many of each item's raters its copy holds

    def __len__(self) -> int:
        return len(self.ids)

    def slot(self, item: str) -> int:
        """The item's index, creating the item if new."""
        k = self.index.get(item)
        if k is None:
            k = self.index[item] = len(self.ids)
            self.ids.append(item)
            self.hist.append({})
            self.raters.append([])
            self.newcomers.append(0)
            self._rater_arrays.append(np.empty(0, dtype=np.int64))
            self._rater_copied.append(0)
            if k >= len(self.arr["actors"]):
                for f in self.FIELDS:
                    self.arr[f] = np.concatenate([self.arr[f], np.zeros(len(self.arr[f]))])
        return k

    def view(self, field: str) -> np.ndarray:
        """The live part of one per-item array."""
        return self.arr[field][: len(self.ids)]

    def rate(self, k: int, old: float, new: float) -> None:
        """Fold a rating (replacing `old` if it is not NaN) into item k's sums and histogram."""
        a, h = self.arr, self.hist[k]
        if old == old:
            a["r_sum"][k] -= old
            a["r_sq"][k] -= old * old
            h[old] -= 1
            if h[old] == 0:
                del h[old]
        else:
            a["r_n"][k] += 1
        a["r_sum"][k] += new
        a["r_sq"][k] += new * new
        h[new] = h.get(new, 0) + 1

    def raters_of(self, slots: list[int]) -> np.ndarray:
        """The raters of items `slots`, concatenated into one numpy array. One loop for all the
        items: DegSim calls this for every rescored user, over every item of its profile."""
        arrays, copied, raters = self._rater_arrays, self._rater_copied, self.raters
        parts = []
        for k in slots:
            arr, have, want = arrays[k], copied[k], len(raters[k])
            if have != want:
                if len(arr) < want:  # room for twice as many: copied again rarely
                    arr = arrays[k] = np.empty(2 * want, dtype=np.int64)
                    have = 0
                arr[have:want] = raters[k][have:]
                copied[k] = want
            parts.append(arr[:want])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def at_value(self, k: int, value: float) -> int:
        """How many ratings of item k equal `value`."""
        return self.hist[k].get(value, 0)

    def to_dict(self) -> dict:
        """JSON-able per-item sums (raters are not included: they are rebuilt from the users)."""
        cols = {f: self.view(f).tolist() for f in self.FIELDS}
        return {
            i: [cols[f][k] for f in self.FIELDS] + [[[v, c] for v, c in self.hist[k].items()]]
            for k, i in enumerate(self.ids)
        }

    @classmethod
    def from_dict(cls, d: dict) -> ItemTable:
        """Inverse of `to_dict` (without raters)."""
        t = cls(max(1024, 1 << math.ceil(math.log2(max(len(d), 1)))))
        for item, row in d.items():
            k = t.slot(item)
            for f, v in zip(cls.FIELDS, row):
                t.arr[f][k] = v
            t.hist[k] = {float(v): int(c) for v, c in row[len(cls.FIELDS)]}
        return t
