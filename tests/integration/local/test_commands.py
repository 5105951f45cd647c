"""The `advrec broker` and `advrec produce` commands against real processes and the real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer

from streams.cli import main
from streams.local.broker import wait_for_kafka
from streams.local.main import produce
from tests.paths import DATA

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("engine", ["kafka", "tansu"])
def test_broker_command_starts_announces_and_stops_cleanly(tmp_path, engine):
    env = {**os.environ, "ADVREC_DATA_DIR": str(tmp_path), "ADVREC_KAFKA_BOOTSTRAP": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "broker", "--engine", engine],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    announced = tmp_path / "broker.json"
    try:
        deadline = time.monotonic() + 30
        while not announced.exists():
            assert time.monotonic() < deadline, process.stdout.read1().decode()
            time.sleep(0.1)
        broker = json.loads(announced.read_text())
        bootstrap = broker["bootstrap"]
        assert bootstrap.startswith("127.0.0.1:") and broker["engine"] == engine
        wait_for_kafka(bootstrap, timeout_s=5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert not announced.exists()
    with pytest.raises(TimeoutError):
        wait_for_kafka(bootstrap, timeout_s=1)
    if engine == "kafka":  # its storage stays under DATA_DIR for the next start
        assert (tmp_path / "kafka" / "logs" / "meta.properties").exists()


def test_produce_replays_movielens_keyed_by_user(kafka_broker, monkeypatch):
    monkeypatch.setenv("ADVREC_KAFKA_BOOTSTRAP", kafka_broker)
    monkeypatch.setenv("ADVREC_EVENTS_TOPIC", "produce-cli")
    result = CliRunner().invoke(
        produce,
        [
            "--dataset",
            str(DATA / "movielens-100k" / "u.data"),
            "--limit",
            "300",
            "--implicit-threshold",
            "4",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sent 300 events" in result.output
    consumer = KafkaConsumer(
        "produce-cli", bootstrap_servers=kafka_broker, auto_offset_reset="earliest", consumer_timeout_ms=3000
    )
    messages = list(consumer)
    consumer.close()
    assert len(messages) == 300
    docs = [json.loads(m.value) for m in messages]
    assert all(m.key.decode() == d["user_id"] for m, d in zip(messages, docs))
    assert {d["type"] for d in docs} == {"click", "purchase"}
    # one user's events stay on one partition
    partitions = {}
    for message, doc in zip(messages, docs):
        partitions.setdefault(doc["user_id"], set()).add(message.partition)
    assert all(len(p) == 1 for p in partitions.values())


def test_produce_simulator_at_a_set_rate(kafka_broker, monkeypatch):
    monkeypatch.setenv("ADVREC_KAFKA_BOOTSTRAP", kafka_broker)
    monkeypatch.setenv("ADVREC_EVENTS_TOPIC", "produce-rate")
    started = time.monotonic()
    result = CliRunner().invoke(produce, ["--simulate", "400", "--rate", "400", "--no-progress"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "sent 400 events" in result.output
    assert elapsed >= 0.9  # 400 events at 400/s take about a second, not an instant


def test_produce_without_a_broker_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVREC_KAFKA_BOOTSTRAP", "")
    monkeypatch.setenv("ADVREC_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["produce", "--simulate", "10"])
    assert result.exit_code != 0 and "advrec broker" in result.output
