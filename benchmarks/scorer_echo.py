"""Baseline for benchmarks/scorer.py: the scorer's own app, answering every request with an empty list.

    ADVREC_KAFKA_BOOTSTRAP=... ADVREC_APP_ID=... .venv/bin/python benchmarks/scorer_echo.py

`create_scorer_app` (the scorer's Faust app with its consumer's fetch bounds, its micro-batches,
`BatchSender`, its metrics and the tail of the profiles changelog) around a core that ranks
nothing: what a request costs through Kafka and Faust on this machine without the model's work,
measured by the same client in the same run as the real scorer.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.contract.settings import Settings  # noqa: E402
from streams.kafka.address import resolve_bootstrap  # noqa: E402
from streams.kafka.faust_app import run_worker  # noqa: E402
from streams.kafka.topics import ensure_topics  # noqa: E402
from streams.serving.app import create_scorer_app  # noqa: E402
from streams.serving.core import ScorerCore, Served  # noqa: E402


class EmptyAnswers(ScorerCore):
    """Answers every request at once with an empty list: no profile lookup, no ranking."""

    def serve(self, requests, seen=lambda user: None):
        return [Served(request, [], [], "popularity", 0) for request in requests], []


if __name__ == "__main__":
    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    topics = [settings.rec_requests_topic, settings.recommendations_topic, settings.rec_deadletter_topic]
    ensure_topics(bootstrap, topics, settings.topic_partitions)
    app = create_scorer_app(settings, bootstrap, False, EmptyAnswers(settings.scorer_max_k), watcher=None)
    run_worker(app, "warning", "scorer_echo ready")
