"""`training.models` itself: the one table of kinds, `build_model`, and `load_recommender` by a file's kind."""

import pytest

from training.models import (
    MODEL_KINDS,
    APRConfig,
    APRRecommender,
    BPRRecommender,
    HybridRecommender,
    PopularityRecommender,
    Recommender,
    build_model,
    load_recommender,
)


def test_the_table_names_every_kind_once_by_its_own_name():
    expected = {
        "bpr": BPRRecommender,
        "apr": APRRecommender,
        "popularity": PopularityRecommender,
        "hybrid": HybridRecommender,
    }
    assert expected == MODEL_KINDS
    for kind, cls in MODEL_KINDS.items():
        assert cls.kind == kind and issubclass(cls, Recommender)


def test_build_model_uses_the_tuned_defaults_and_overrides():
    model = build_model("apr", seed=7, dim=8)
    assert type(model) is APRRecommender and model.config == APRConfig(seed=7, dim=8)
    assert build_model("bpr").config.reg == 3e-3 and build_model("apr").config.reg == 1e-3
    with pytest.raises(ValueError, match="unknown model kind 'svd'; one of bpr, apr, popularity, hybrid"):
        build_model("svd")


@pytest.mark.parametrize("kind", ["bpr", "apr", "popularity", "hybrid"])
def test_load_recommender_picks_the_class_from_the_file(kind, toy, tmp_path):
    overrides = {} if kind == "popularity" else {"dim": 4, "epochs": 1, "device": "cpu"}
    build_model(kind, **overrides).fit(toy).save(tmp_path / "m.pt")
    assert type(load_recommender(tmp_path / "m.pt")) is MODEL_KINDS[kind]
