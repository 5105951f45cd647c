"""The embedded Apache Kafka's own configuration, checked on a running broker."""

from __future__ import annotations

from kafka import KafkaProducer

from streams.kafka.topics import ensure_topics
from streams.local.broker import EmbeddedBroker
from tests.integration.conftest import wait_for


def test_each_partition_maps_index_files_of_one_megabyte_not_ten(tmp_path):
    # Kafka preallocates every partition's offset and time index as a sparse file and maps it; at
    # its default 10 MB, faults in them zero-filled read-ahead over the holes until that was half
    # the broker's CPU (docs/broker.md). The broker must run with the smaller index.
    with EmbeddedBroker(tmp_path / "kafka", engine="kafka") as broker:
        ensure_topics(broker.bootstrap, ["index-size"], 2)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for partition in (0, 1):  # a partition's index files are made when it is first used
            producer.send("index-size", b"x", partition=partition)
        producer.flush()
        producer.close()
        logs = tmp_path / "kafka" / "logs"
        wait_for(lambda: len(list(logs.glob("index-size-*/*.timeindex"))) == 2, 20, "both partitions' index files")
        offset_indexes = sorted(logs.glob("index-size-*/*.index"))
        time_indexes = sorted(logs.glob("index-size-*/*.timeindex"))
        # the active segment's index is preallocated to the maximum: 131,072 entries of 8 bytes
        assert [p.stat().st_size for p in offset_indexes] == [1 << 20, 1 << 20]
        # ... and its time index to the entries of 12 bytes that fit in it
        assert [p.stat().st_size for p in time_indexes] == [(1 << 20) // 12 * 12] * 2
