import numpy as np
import torch

from training.models import MatrixFactorization
from training.vocab import Vocabulary


def test_indices_follow_first_seen_order_and_never_change():
    v = Vocabulary(["b", "a", "b"])
    assert v.ids == ["b", "a"]
    assert v.add(["c", "a", "d", "c"]).tolist() == [2, 1, 3, 2]
    assert v.lookup(["d", "zz", "b"]).tolist() == [3, -1, 0]
    assert len(v) == 4 and "c" in v and "zz" not in v


def test_ids_are_strings_and_round_trip():
    v = Vocabulary([3, 1, 3])
    assert v.ids == ["3", "1"] and v.lookup(["1"]).tolist() == [1]
    assert Vocabulary(v.to_list()) == v


def test_growing_tables_keeps_old_rows_bit_identical():
    net = MatrixFactorization(5, 7, 8, 0.1, torch.Generator().manual_seed(0))
    users, items = net.users.detach().clone(), net.items.detach().clone()
    net.grow(9, 7, torch.Generator().manual_seed(1))
    net.grow(9, 12, torch.Generator().manual_seed(2))
    assert net.users.shape == (9, 8) and net.items.shape == (12, 8)
    assert torch.equal(net.users[:5], users) and torch.equal(net.items[:7], items)
    assert not torch.equal(net.users[5:], torch.zeros(4, 8))


def test_new_rows_are_initialised_like_the_originals():
    net = MatrixFactorization(2000, 1, 16, 0.1, torch.Generator().manual_seed(0))
    net.grow(4000, 1, torch.Generator().manual_seed(1))
    old, new = net.users[:2000].detach(), net.users[2000:].detach()
    assert abs(old.std().item() - new.std().item()) < 0.005
    assert abs(new.mean().item()) < 0.005
    assert np.isclose(new.std().item(), 0.1, atol=0.005)
