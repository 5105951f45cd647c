"""Creating advrec's topics up front, so producers and workers agree on partition counts."""

from __future__ import annotations

import contextlib
from collections.abc import Collection

__all__ = ["ensure_topics", "partitions_of"]


def ensure_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    replication_factor: int = 1,
    compact: bool = False,
    compacted: Collection[str] = (),
) -> None:
    """Create the named topics with `partitions` partitions if they do not exist yet (log-compacted if `compact`,
    or if named in `compacted`, e.g. `Settings.compacted_topics`: topics whose latest record per key
    is the state, like `catalog`), and return once the broker's metadata lists every one of them with
    a leader for each partition.

    CreateTopics returns when the controller has accepted them; the broker's metadata can list them
    later. A Faust app that joins its group in between gets no partition of a topic its assignor
    finds missing until the next rebalance (see `ensure_changelogs`).
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="advrec-admin")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name,
                partitions,
                replication_factor,
                topic_configs={"cleanup.policy": "compact"} if compact or name in compacted else {},
            )
            for name in names
            if name not in existing
        ]
        # another process may create one between our list and create
        with contextlib.suppress(TopicAlreadyExistsError):
            if missing:
                admin.create_topics(missing)
        admin.wait_for_topics(names)
    finally:
        admin.close()


async def partitions_of(consumer, topic: str) -> set[int]:
    """The partitions of `topic` for a group-less aiokafka consumer ({} if the topic does not exist yet).

    aiokafka keeps metadata only for the topics its client tracks, and Apache Kafka answers only for
    those, so the topic is tracked first (Tansu answered for every topic, which hid this).
    """
    if topic not in await consumer.topics():
        return set()
    await consumer._client.add_topic(topic)
    return set(consumer.partitions_for_topic(topic) or ())
