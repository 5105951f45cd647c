"""APR: the adversarial perturbation, its closed-form gradient, the warm-up, and training on CUDA."""

import pytest
import torch

from training.evaluation import evaluate, leave_last_out
from training.models import PopularityRecommender
from training.models.apr import APRRecommender, adversarial_delta
from training.models.mf import BPRRecommender, bpr_loss
from training.sampling import sample_triples


def _batch(model, frame, seed=0):
    import numpy as np

    u, i = model.users.lookup(frame["user"]), model.items.lookup(frame["item"])
    t = sample_triples(u, i, model.seen, len(model.items), np.random.default_rng(seed))
    return tuple(torch.as_tensor(a) for a in t)


def _loss(model, u, i, j, du=0.0, di=0.0, dj=0.0):
    with torch.no_grad():
        return bpr_loss(model.net.users[u] + du, model.net.items[i] + di, model.net.items[j] + dj).item()


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_apr_perturbation_increases_bpr_loss_more_than_random_noise_of_equal_norm(ml_slice, mode):
    model = APRRecommender(dim=16, epochs=3, eps=0.2, eps_mode=mode, device="cpu").fit(ml_slice)
    u, i, j = _batch(model, ml_slice.iloc[:2048])
    clean = _loss(model, u, i, j)
    du, di, dj = model.perturbation(u, i, j)
    adversarial = _loss(model, u, i, j, du, di, dj)
    g = torch.Generator().manual_seed(0)

    def noise(d):
        r = torch.randn(d.shape, generator=g)
        return r / r.norm(dim=1, keepdim=True) * d.norm(dim=1, keepdim=True)

    random = _loss(model, u, i, j, noise(du), noise(di), noise(dj))
    assert adversarial > clean + 0.01
    assert adversarial - clean > 5 * abs(random - clean)


def test_delta_has_norm_eps_per_row_and_sums_repeated_rows():
    table = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    grad = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    index = torch.tensor([0, 2, 0])
    d = adversarial_delta(grad, index, table[index], eps=0.5, relative=False)
    expected_row0 = 0.5 * torch.tensor([1.0, 1.0]) / 2**0.5  # (1,0)+(0,1), normalised
    torch.testing.assert_close(d[0], expected_row0)
    torch.testing.assert_close(d[2], expected_row0)
    torch.testing.assert_close(d[1], torch.tensor([0.0, 0.5]))
    rel = adversarial_delta(grad, index, table[index], eps=0.5, relative=True)
    torch.testing.assert_close(rel[0], expected_row0 * 5.0)  # ‖(3,4)‖ = 5
    torch.testing.assert_close(rel[1], torch.tensor([0.0, 1.0]))  # ‖(0,2)‖ = 2


def test_apr_without_adversary_is_bpr(toy):
    a = APRRecommender(dim=8, epochs=3, reg=1e-3, reg_adv=0.0, device="cpu").fit(toy)
    b = BPRRecommender(dim=8, epochs=3, reg=1e-3, device="cpu").fit(toy)
    assert torch.equal(a.net.users, b.net.users) and torch.equal(a.net.items, b.net.items)


def test_apr_warm_starts_from_bpr_within_the_epoch_budget(toy):
    a = APRRecommender(dim=8, epochs=4, reg=1e-3, warmup=1.0, device="cpu").fit(toy)
    b = BPRRecommender(dim=8, epochs=4, reg=1e-3, device="cpu").fit(toy)
    assert torch.equal(a.net.users, b.net.users)
    c = APRRecommender(dim=8, epochs=4, reg=1e-3, warmup=0.5, device="cpu").fit(toy)
    assert not torch.equal(c.net.users, b.net.users) and len(c.epoch_seconds) == 4


def test_closed_form_perturbation_follows_the_autograd_gradient(toy):
    model = APRRecommender(dim=8, epochs=2, eps=0.3, eps_mode="absolute", device="cpu").fit(toy)
    u, i, j = torch.tensor([0, 1, 0]), torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    pu, qi, qj = (t.detach().requires_grad_() for t in (model.net.users[u], model.net.items[i], model.net.items[j]))
    gu, gi, gj = torch.autograd.grad(bpr_loss(pu, qi, qj), [pu, qi, qj])
    du, di, dj = model.perturbation(u, i, j)
    torch.testing.assert_close(du, adversarial_delta(gu, u, model.net.users[u], 0.3, False))
    dq = adversarial_delta(torch.cat([gi, gj]), torch.cat([i, j]), model.net.items[torch.cat([i, j])], 0.3, False)
    torch.testing.assert_close(torch.cat([di, dj]), dq)


def test_auto_device_is_cuda_when_present_and_trains_there(ml_slice):
    """The default device: CUDA when the machine has it (the GPU run of CI), else the CPU."""
    small_split = leave_last_out(ml_slice, seed=0)
    pop = evaluate(PopularityRecommender().fit(small_split.train), small_split)
    model = APRRecommender(dim=32, epochs=20, gpu_batch_size=1024).fit(small_split.train)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model.device.type == expected and model.net.users.device.type == expected
    assert evaluate(model, small_split)["hr@10"] > pop["hr@10"]
