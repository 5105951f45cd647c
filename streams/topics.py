"""Creating advrec's topics up front, so producers and workers agree on partition counts."""
from __future__ import annotations

__all__ = ["ensure_topics"]


def ensure_topics(bootstrap: str, names: list[str], partitions: int, replication_factor: int = 1) -> None:
    """Create the named topics with `partitions` partitions if they do not exist yet."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="advrec-admin")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, partitions, replication_factor) for name in names if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created it between our list and create
    finally:
        admin.close()
