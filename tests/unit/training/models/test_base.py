"""The shared file envelope: a model loads only as its own kind, and only from an advrec file."""

import pytest
import torch

from training.models import APRRecommender, BPRRecommender, PopularityRecommender
from training.models.base import read_model_file

SMALL = dict(dim=16, epochs=4, device="cpu")


def test_load_refuses_a_model_of_another_kind(toy, tmp_path):
    BPRRecommender(**SMALL).fit(toy).save(tmp_path / "bpr.pt")
    with pytest.raises(TypeError):
        APRRecommender.load(tmp_path / "bpr.pt")
    PopularityRecommender().fit(toy).save(tmp_path / "pop.pt")
    with pytest.raises(TypeError, match="holds a popularity model, not a bpr one"):
        BPRRecommender.load(tmp_path / "pop.pt")


def test_read_model_file_refuses_what_no_advrec_model_wrote(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an advrec model file"):
        read_model_file(tmp_path / "other.pt")
    torch.save({"format": "advrec.mf/9", "kind": "bpr"}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="not an advrec.mf/1 or advrec.mf/2 file"):
        BPRRecommender.load(tmp_path / "future.pt")
