"""Every table's changelog exists, compacted, before a worker or the detector joins its group.

Faust creates changelogs while it starts, concurrently with its first group join; a changelog the
assignor does not yet see leaves its table without an active partition until the next rebalance
(the fraud view of a lone fresh worker answered "Service unavailable"). `ensure_changelogs`, called
by both composition roots, creates them first.
"""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams.contract.settings import Settings
from streams.kafka.faust_app import ensure_changelogs
from streams.worker.app import create_app, create_detector_app, create_windows_app
from streams.worker.main import _prepare


def _changelogs(bootstrap: str, prefix: str) -> dict[str, tuple[int, str]]:
    """name: (partitions, cleanup.policy) of every topic named `<prefix>...-changelog`."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="changelog-test")
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix) and t.endswith("-changelog")]
        # a partition counts once the broker's metadata gives it a leader: ensure_changelogs
        # returns only then, so a group join right after it sees every changelog
        partitions = {
            t["name"]: sum(p["leader_id"] >= 0 for p in t["partitions"]) for t in admin.describe_topics(names)
        }
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
        policy = {name: entries["cleanup.policy"]["value"] for name, entries in configs["topic"].items()}
        return {name: (partitions[name], policy[name]) for name in names}
    finally:
        admin.close()


def test_the_worker_detector_and_windows_changelogs_exist_compacted_before_they_start(kafka_broker, tmp_path):
    worker = Settings(app_id="cl", data_dir=tmp_path / "w", topic_partitions=3)
    ensure_changelogs(create_app(worker, kafka_broker, tansu_workarounds=False), kafka_broker, 1)
    assert _changelogs(kafka_broker, "cl-") == {
        "cl-profiles-changelog": (3, "compact"),
        "cl-items-changelog": (3, "compact"),
        "cl-catalog-changelog": (3, "compact"),
        "cl-window-marks-changelog": (3, "compact"),
        "cl-suspicion-changelog": (1, "compact"),
        "cl-fraud-detector-changelog": (1, "compact"),
    }

    own = Settings(app_id="own", data_dir=tmp_path / "d", topic_partitions=3, fraud_in_worker=False)
    ensure_changelogs(create_detector_app(own, kafka_broker, tansu_workarounds=False), kafka_broker, 1)
    assert _changelogs(kafka_broker, "own-detector-") == {
        "own-detector-suspicion-changelog": (1, "compact"),
        "own-detector-fraud-detector-changelog": (1, "compact"),
    }

    # the window sink apart: its marks are the window process's, not the workers'
    apart = Settings(app_id="cl-apart", data_dir=tmp_path / "a", topic_partitions=3, windows_in_worker=False)
    ensure_changelogs(create_app(apart, kafka_broker, tansu_workarounds=False), kafka_broker, 1)
    ensure_changelogs(create_windows_app(apart, kafka_broker, tansu_workarounds=False), kafka_broker, 1)
    assert "cl-apart-window-marks-changelog" not in _changelogs(kafka_broker, "cl-apart-")
    assert _changelogs(kafka_broker, "cl-apart-windows-") == {"cl-apart-windows-window-marks-changelog": (3, "compact")}


def test_the_verdict_topics_are_compacted_the_event_topics_not(kafka_broker, tmp_path):
    # Every start reads fraud.flags and fraud.labels from the beginning, the latest record per user
    # being the state: deleted after the default 7 days, a restart forgot every older verdict.
    settings = Settings(
        kafka_bootstrap=kafka_broker,
        data_dir=tmp_path,
        topic_partitions=2,
        events_topic="cp.events",
        fraud_flags_topic="cp.flags",
        fraud_labels_topic="cp.labels",
        catalog_topic="cp.catalog",
    )
    _prepare(settings)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker, client_id="policy-test")
    try:
        names = ["cp.events", "cp.flags", "cp.labels", "cp.catalog"]
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
        # a topic created without one reports no cleanup.policy: the broker's default, delete
        policy = {
            name: entries.get("cleanup.policy", {}).get("value", "delete") for name, entries in configs["topic"].items()
        }
    finally:
        admin.close()
    assert policy == {"cp.events": "delete", "cp.flags": "compact", "cp.labels": "compact", "cp.catalog": "compact"}
