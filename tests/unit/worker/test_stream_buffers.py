"""The worker's stream buffers: the ingest agent holds `events_buffer_records` fetched records of
`events`, every other agent Faust's app-wide buffer (Faust's `app.topic` drops a topic's own
`maxsize`, so the worker builds that topic itself)."""

from __future__ import annotations

from streams.contract.settings import Settings
from streams.worker.app import create_app


def test_the_ingest_agent_has_its_own_buffer_and_the_others_the_apps(tmp_path):
    settings = Settings(app_id="buffers", data_dir=tmp_path, events_buffer_records=12_345, batch_max_events=3_000)
    app = create_app(settings, "127.0.0.1:9", tansu_workarounds=False)

    buffers = {agent.name: agent.channel.clone(is_iterator=True).queue.maxsize for agent in app.agents.values()}

    assert buffers.pop("ingest") == 12_345
    assert buffers and set(buffers.values()) == {6_000}  # the app's: twice the batch
