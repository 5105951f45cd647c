"""Announcements of alias moves: the update's fields, and best effort when the notifier fails."""

from __future__ import annotations

import logging

from registry.announcements import announce, model_update
from streams.contract.records import ModelUpdate


def test_an_update_has_the_fields_of_a_model_update_record():
    update = model_update("advrec-recommender", 3, "champion", "rollback", 1700000000.5)
    assert update == {
        "model_name": "advrec-recommender",
        "version": 3,
        "alias": "champion",
        "action": "rollback",
        "ts": 1700000000.5,
    }
    assert ModelUpdate(**update).version == 3


def test_announce_hands_the_update_over_and_never_raises(caplog):
    sent: list[dict] = []
    update = model_update("m", 2, "champion", "promote", 1.0)
    announce(sent.append, update)
    announce(None, update)  # no notifier: nothing to do
    assert sent == [update]

    def broken(_: dict) -> None:
        raise ConnectionError("broker down")

    with caplog.at_level(logging.WARNING, logger="registry.announcements"):
        announce(broken, update)
    assert "could not announce promote of version 2: broker down" in caplog.text
