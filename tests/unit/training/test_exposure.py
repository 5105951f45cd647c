"""The exposure audit with literal score tables: shares of top-K lists, the rise, and who carried it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from training.exposure import audit_sample, exposure_audit, exposure_shares, untrusted_shares
from training.models import BPRRecommender
from training.stream.probe import due
from training.vocab import Vocabulary


class Table:
    """A model whose scores are a literal table; `recommend` lists the top k (nothing is seen)."""

    def __init__(self, users, items, scores):
        self.users, self.items = Vocabulary(users), Vocabulary(items)
        self.scores = np.asarray(scores, dtype=float)

    def recommend(self, user_ids, k=10, exclude_seen=True):
        s = self.scores[self.users.lookup(user_ids)]
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return np.asarray(self.items.ids, dtype=object)[top], np.take_along_axis(s, top, 1)


USERS, ITEMS = ["u1", "u2", "u3", "u4"], ["a", "b", "c", "t"]
CHAMPION = Table(USERS, ITEMS, [[4, 3, 2, 1]] * 4)  # everyone's top 2: a, b
CHALLENGER = Table(USERS, ITEMS, [[4, 3, 2, 9], [4, 3, 2, 9], [4, 3, 2, 9], [4, 3, 9, 1]])  # t for 3, c for 1


def test_exposure_is_the_share_of_top_k_lists_holding_the_item():
    assert exposure_shares(CHAMPION, USERS, k=2).to_dict() == {"a": 1.0, "b": 1.0}
    assert exposure_shares(CHALLENGER, USERS, k=2).to_dict() == {"a": 1.0, "t": 0.75, "c": 0.25}
    assert exposure_shares(CHALLENGER, [], k=2).empty


def test_the_audit_lists_risen_items_with_the_share_of_their_rows_from_untrusted_accounts():
    rows = pd.DataFrame({"user": ["f1", "f2", "f3", "u1", "u2", "u3"], "item": ["t", "t", "t", "t", "c", "c"]})
    audit = exposure_audit(CHALLENGER, CHAMPION, USERS, rows, untrusted={"f1", "f2", "f3"}, histories=rows, k=2)
    assert audit["k"] == 2 and audit["users"] == 4
    assert audit["items"] == [
        {"item": "t", "challenger": 0.75, "champion": 0.0, "carried": 0.75, "rows": 4},
        {"item": "c", "challenger": 0.25, "champion": 0.0, "carried": 0.0, "rows": 2},
    ]  # b fell (1.0 -> 0.0): only rises are kept
    assert untrusted_shares(rows, set()).loc["t", "carried"] == 0.0


def mf(item_rows) -> BPRRecommender:
    """Two users with the trained row (1, 0) over items a, b, c, t."""
    model = BPRRecommender(dim=2, device="cpu")
    model.users, model.items = Vocabulary(["u1", "u2"]), Vocabulary(["a", "b", "c", "t"])
    model.net.users = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    model.net.items = torch.nn.Parameter(torch.tensor(item_rows))
    return model


def test_the_audit_serves_users_as_the_scorer_does_by_their_profiles():
    # The trained rows rank a first in both models; served by their profile (b: (0, 1)), the
    # challenger's users get t, the champion's c. The audit must see what is served: t rose.
    challenger = mf([[3.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 5.0]])
    champion = mf([[3.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 0.0]])
    assert exposure_shares(challenger, ["u1", "u2"], k=1).to_dict() == {"a": 1.0}
    histories = pd.DataFrame({"user": ["u1", "u2", "other"], "item": ["b", "b", "t"]})
    audit = exposure_audit(challenger, champion, ["u1", "u2"], histories, set(), histories=histories, k=1)
    assert [(x["item"], x["challenger"], x["champion"]) for x in audit["items"]] == [("t", 1.0, 0.0)]


def test_the_audit_sample_is_fixed_as_users_come_and_go():
    users = [f"u{i}" for i in range(1000)]
    sample = audit_sample(users, 50, seed=1)
    assert len(sample) == 50 and sample == audit_sample(reversed(users), 50, seed=1)
    grown = audit_sample(users + [f"new{i}" for i in range(100)], 50, seed=1)
    assert all(u.startswith("new") for u in set(grown) - set(sample))  # newcomers take places, nobody else moves
    assert audit_sample(users, 50, seed=2) != sample


def test_the_probe_is_due_first_and_then_every_n_rounds():
    assert due(1, {}, 5) and not due(2, {"round": 1}, 5) and due(6, {"round": 1}, 5)
    assert not due(1, {}, 0)
