"""The one settings object of every advrec process, read from environment variables `ADVREC_*`.

Only composition roots (the CLI commands) build it; everything else receives it, frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of advrec; every field is `ADVREC_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="ADVREC_", frozen=True, extra="ignore")

    # Kafka
    kafka_bootstrap: str = Field("", description="Broker list host:port[,...]; empty starts the embedded broker.")
    embedded_broker_port: int = Field(0, description="Port of the embedded broker; 0 picks a free one.")
    topic_partitions: int = Field(4, description="Partitions of the topics advrec creates.")
    replication_factor: int = Field(1, description="Replication factor of the topics advrec creates (3 in production).")
    app_id: str = Field("advrec", description="Faust application id (consumer group and changelog prefix).")
    broker_engine: str = Field(
        "auto",
        description="Embedded broker: kafka (Apache Kafka, needs Java), tansu (no Java), "
        "or auto (kafka where Java runs).",
    )
    broker_cache_dir: Path = Field(
        Path.home() / ".cache" / "advrec",
        description="Where the embedded Kafka's jars are cached (outside the repository).",
    )
    processing_guarantee: str = Field(
        "at_least_once",
        description="at_least_once, the only guarantee advrec runs: inputs may be read again after a "
        "crash, and every update is idempotent (docs/broker.md#processing-guarantee). exactly_once is refused.",
    )
    group_session_timeout_s: float = Field(
        10.0,
        description="Consumer-group session timeout: how long a crashed member holds its partitions "
        "before the group rebalances them.",
    )
    tansu_workarounds: bool | None = Field(
        None, description="Apply the Tansu broker's workarounds; unset = only when the broker in use is Tansu."
    )
    consumer_thread: bool = Field(
        False,
        description="Run each Faust app's Kafka consumer in a thread of its own, as Faust does, instead of on the "
        "app's event loop. The thread keeps the group's heartbeats going while an agent blocks the loop (advrec's "
        "agents yield every few milliseconds); it costs every fetch a hand-over between threads each way.",
    )

    # Topics
    events_topic: str = "events"
    deadletter_topic: str = "events.deadletter"

    # Worker HTTP views (profiles, metrics)
    web_bind: str = Field("127.0.0.1", description="Address the worker's HTTP views listen on (0.0.0.0 in containers).")
    web_host: str = Field(
        "127.0.0.1",
        description="Host name other workers use to reach this one's views; empty = this machine's hostname.",
    )
    web_port: int = Field(6066, description="Port of the worker's HTTP views (/profiles, /metrics).")

    # Local state
    data_dir: Path = Field(Path("var"), description="Local state: tables, windows, MLflow store, reports.")
    mlflow_tracking_uri: str = Field("", description="MLflow tracking URI; empty = sqlite file under data_dir.")

    # Validation bounds
    max_event_bytes: int = Field(16_384, description="Payloads larger than this are dead-lettered.")
    max_future_skew_s: float = Field(3_600.0, description="How far in the future an event ts may lie.")
    min_event_ts: float = Field(631_152_000.0, description="Earliest plausible event ts (1990-01-01).")
    rating_min: float = 0.5
    rating_max: float = 5.0
    max_value: float = Field(1_000_000.0, description="Largest plausible price of a click/purchase.")
    max_id_length: int = 128
    max_envelope_bytes: int = Field(
        1_048_576, description="Envelopes (JSON arrays of events) larger than this are dead-lettered."
    )
    max_envelope_events: int = Field(1_000, description="Most events one envelope may hold.")

    # Profiles
    recent_items: int = Field(50, description="How many recent items a profile keeps.")
    rate_half_life_s: float = Field(300.0, description="Half-life of the event-rate EWMA, seconds.")
    profile_cache_profiles: int = Field(
        10_000,
        ge=0,
        description="Profiles the ingest agent keeps decoded between batches (0: none); "
        "5-20 kB of memory each for users of 20-100 events, more for longer histories.",
    )

    # Stream batching: the worker takes up to this many events, or waits at most this long.
    batch_max_events: int = 5_000
    batch_max_bytes: int = Field(
        1_048_576, description="Ingest works through a batch in slices of this many bytes (envelopes make big batches)."
    )
    batch_max_seconds: float = 0.5
    events_buffer_records: int = Field(
        20_000,
        ge=1,
        description="Records of `events` a worker holds fetched and not yet taken by the ingest agent (Faust's "
        "stream buffer): room for a few batches keeps the fetcher running while one is processed. Each record "
        "is held whole: with envelopes, memory grows with their size.",
    )

    # --- windows and trainer ---
    window_max_events: int = Field(
        20_000,
        description="The window sink closes a window when it holds this many events (the most it holds; "
        "one producer envelope's events stay together)…",
    )
    window_max_seconds: float = Field(30.0, description="…or after this many seconds, whichever comes first.")
    windows_uri: str = Field(
        "", description="Where window Parquet files go (file://, s3://…); empty = file://DATA_DIR/windows."
    )
    batches_topic: str = Field("batches", description="Topic announcing each written window file.")
    windows_in_worker: bool = Field(
        True,
        description="The window sink runs inside the stream workers; false: in its own process (`advrec windows`).",
    )
    windows_web_port: int = Field(
        6070, description="Port of the window process's HTTP views (/metrics), with windows_in_worker off."
    )
    trainer_metrics_port: int = Field(6067, description="Port of the trainer's Prometheus endpoint.")

    # --- item catalog and text features ---
    catalog_topic: str = Field(
        "catalog", description="Compacted topic of CatalogEntry records (key = item_id; the latest per item wins)."
    )
    catalog_max_text_chars: int = Field(
        8_000, description="Catalog entries whose title + description + categories are longer are dead-lettered."
    )
    text_encoder: str = Field(
        "minilm",
        description="Text encoder of hybrid models: minilm (packaged all-MiniLM-L6-v2), wordllama, hashing "
        "(no language model), or st:/path/to/a/sentence-transformers/model.",
    )
    text_cache: Path | None = Field(
        None, description="sqlite file of cached text embeddings; unset = DATA_DIR/text-embeddings.sqlite."
    )
    text_model_dir: Path = Field(
        Path.home() / ".cache" / "advrec" / "text",
        description="Where packaged text models are unpacked once (outside the repository).",
    )

    # --- registry and scorer ---
    model_name: str = Field("advrec-recommender", description="Registered model name in MLflow.")
    promotion: bool = Field(
        True,
        description="Run the promotion gate on every registered round; false (a shadow model): register, "
        "point the `shadow` alias at it, never promote.",
    )
    serve_alias: str = Field("champion", description="The alias the scorer serves (a shadow scorer: `shadow`).")
    group_suffix: str = Field(
        "",
        description="Appended to the trainer's consumer group and the scorer's app id, so that a shadow "
        "trainer and scorer read the same topics beside the main ones.",
    )
    gate_hr_tolerance: float = Field(
        0.02, description="Challenger HR@10 may be this share below the champion's (and popularity's)."
    )
    gate_ndcg_tolerance: float = Field(
        0.02, description="Challenger NDCG@10 may be this share below the champion's (and popularity's)."
    )
    gate_min_hr_at_10: float = Field(0.05, description="Absolute HR@10 floor of any promoted version.")
    gate_min_ndcg_at_10: float = Field(0.02, description="Absolute NDCG@10 floor of any promoted version.")
    gate_fgsm_eps: str = Field("0.25", description="FGSM step (key of the report's fgsm block) the gate checks.")
    gate_max_fgsm_drop: float = Field(0.30, description="Largest relative NDCG@10 drop under FGSM at gate_fgsm_eps.")
    gate_max_poisoning_lift: float = Field(0.05, description="Largest target HR@50 lift under the poisoning probe.")
    probe_attack: Literal["bandwagon", "gan"] = Field(
        "bandwagon",
        description="The red-team probe's attack: bandwagon (streams.sources.attacks) or gan (a learned attacker "
        "trained on the probed round's data, streams.adversary).",
    )
    probe_gan_steps: int = Field(
        60, ge=0, description="Generator training steps of the gan probe (its cost grows with them)."
    )
    probe_gan_popularity: float = Field(
        0.0, ge=0, description="The gan probe generator's popularity prior (0: none; 2 with 0 steps: the strongest)."
    )
    gate_min_eval_users: int = Field(20, description="Fewer evaluation users than this: hold, do not decide.")
    gate_max_exposure_jump: float = Field(
        0.05, description="Exposure audit: largest rise of an item's share of audited users' top-K lists."
    )
    gate_max_exposure_ratio: float = Field(
        2.0, description="Exposure audit: an item's share may also grow this many times (both bounds must break)."
    )
    gate_min_carried_share: float = Field(
        0.5, description="Exposure audit: alarm only when this share of the item's new rows is untrusted."
    )
    gate_min_exposure_lists: int = Field(
        5, ge=0, description="Exposure audit: alarm only when the item entered at least this many more audited lists."
    )
    gate_popularity_floor: bool = Field(
        True,
        description="Reject a challenger that ranks its evaluation users worse than the popularity list "
        "(the scorer's fallback), within the HR@10/NDCG@10 tolerances.",
    )
    mlflow_retries: int = Field(5, description="Attempts of an MLflow call before giving up (exponential backoff).")
    mlflow_retry_backoff_s: float = Field(0.5, description="First backoff between MLflow attempts; doubles each time.")
    model_updates_topic: str = Field(
        "model.updates", description="Topic on which promotions and rollbacks are announced."
    )
    rec_requests_topic: str = Field("rec.requests", description="Recommendation requests, consumed by the scorer.")
    recommendations_topic: str = Field(
        "recommendations", description="Recommendation responses, produced by the scorer."
    )
    rec_deadletter_topic: str = Field("rec.requests.deadletter", description="Rejected recommendation requests.")
    scorer_metrics_port: int = Field(6068, description="Port of the scorer's HTTP views (/metrics, /model).")
    scorer_poll_seconds: float = Field(30.0, description="How often the scorer checks the champion alias.")
    scorer_batch_max: int = Field(32, description="Requests the scorer takes at most per micro-batch…")
    scorer_batch_seconds: float = Field(0.01, description="…or what arrived within this time.")
    scorer_max_k: int = Field(100, description="Largest k a request may ask for.")
    scorer_trusted_popularity: bool = Field(
        True,
        description="Rank the popularity fallback by each item's share of the trusted accounts (the trust gate's "
        "verdicts on fraud.flags), capped by its share of every account, instead of every account alone "
        "(false: the undefended shadow's).",
    )
    scorer_fetch_wait_ms: int = Field(
        0,
        ge=0,
        description="How long the broker may hold the scorer's fetch of requests to gather more (0: it answers as "
        "soon as one is there). Fewer, fuller fetches cost the scorer less CPU per request at moderate rates and "
        "add up to this much latency (docs/operations.md).",
    )

    # --- fraud detection in the stream ---
    fraud_enabled: bool = Field(True, description="Run the fraud detector on the worker's ingest batches.")
    fraud_in_worker: bool = Field(
        True,
        description="The fraud detector runs inside a stream worker; false: in its own process (`advrec detector`).",
    )
    detector_web_port: int = Field(
        6069, description="Port of the detector process's HTTP views (/fraud, /metrics), with fraud_in_worker off."
    )
    fraud_threshold: float | None = Field(
        None, description="Score at or above which a user is flagged; unset = the detector's (0.5)."
    )
    fraud_flags_topic: str = Field(
        "fraud.flags",
        description="Topic of FraudFlag records (flags and clears); the trainer quarantines flagged users.",
    )
    fraud_labels_topic: str = Field(
        "fraud.labels", description="Topic of FraudLabel records: analysts' fraud / genuine verdicts (`advrec label`)."
    )
    trust_min_events: int = Field(
        20, description="Trust gate: an account's events may train once it has this many events (and the rest holds)."
    )
    trust_min_age_s: float = Field(0.0, description="Trust gate: …and is at least this old (event time, seconds).")
    trust_max_score: float = Field(0.25, description="Trust gate: …and its fraud score is below this.")
    trust_hold_lenient: bool = Field(
        True, description="Trust gate: hold accounts the detector finds mildly suspicious."
    )
    trust_hold_swarms: bool = Field(
        True,
        description="Trust gate: hold accounts that touched, as newcomers, an item newcomer accounts swarm…",
    )
    trust_swarm_min_events: int = Field(
        40, description="Trust gate: …until they have this many events (twice an established account's)."
    )
    trust_gate: bool = Field(
        True,
        description="Trainer: train only trusted accounts' events; hold the others until trusted (dropped if flagged).",
    )
    fraud_checkpoint_s: float = Field(30.0, description="Seconds between checkpoints of the detector's per-user state.")
    fraud_full_flush_s: float = Field(
        60.0, description="Seconds between full rescores of every user (only if events arrived)."
    )

    @field_validator("processing_guarantee")
    @classmethod
    def _at_least_once(cls, value: str) -> str:
        # Faust's exactly-once puts each output in the transaction of its *destination* partition
        # and commits a transaction with the offsets of the input partition of the same number. The
        # one partition of fraud.events is never an input with offsets to commit in that
        # transaction, so its records stayed uncommitted and the detector never saw one (measured:
        # docs/broker.md#processing-guarantee).
        if value == "exactly_once":
            raise ValueError(
                "exactly_once is not supported: Faust's transactions assume each output goes to the "
                "partition of its input, and the worker's topics do not (fraud.events has one partition, "
                "item deltas are keyed by item), so a worker with it never fed the fraud detector. advrec "
                "runs at_least_once with idempotent updates (docs/broker.md#processing-guarantee)."
            )
        if value != "at_least_once":
            raise ValueError(f"must be at_least_once, not {value!r}")
        return value

    @property
    def valid_topic(self) -> str:
        """The worker's own topic of validated events in envelopes, per source partition (the window sink reads it)."""
        return f"{self.app_id}-events-valid"

    @property
    def fraud_events_topic(self) -> str:
        """The worker's own one-partition topic of validated events (the one fraud detector reads it)."""
        return f"{self.app_id}-fraud-events"

    @property
    def item_deltas_topic(self) -> str:
        """The worker's own topic of per-item deltas, partitioned by item (the item table reads it)."""
        return f"{self.app_id}-item-deltas"

    @property
    def catalog_changelog_topic(self) -> str:
        """The changelog of the worker's catalog table: valid entries only (the trainer reads it)."""
        return f"{self.app_id}-catalog-changelog"

    def worker_topics(self) -> dict[str, int]:
        """Every topic the stream worker reads or writes, with its partition count (created at start)."""
        n = self.topic_partitions
        return {
            self.events_topic: n,
            self.deadletter_topic: n,
            self.valid_topic: n,
            self.fraud_events_topic: 1,
            self.item_deltas_topic: n,
            self.batches_topic: n,
            self.fraud_flags_topic: n,
            self.fraud_labels_topic: n,
            self.catalog_topic: n,
        }

    @property
    def compacted_topics(self) -> set[str]:
        """Topics whose latest record per key is the state: created with cleanup.policy=compact.

        `fraud.flags` and `fraud.labels` are read from the beginning on every start (the trainer's
        quarantine, the scorer's trust, the windows' suspect marks, the detector's labels): with
        the default 7-day retention a restart after a week forgot every older verdict.
        """
        return {self.catalog_topic, self.fraud_flags_topic, self.fraud_labels_topic}

    @property
    def text_cache_path(self) -> Path:
        """The embedding cache in force: the configured file, or DATA_DIR/text-embeddings.sqlite."""
        return self.text_cache or self.data_dir / "text-embeddings.sqlite"

    @property
    def mlflow_uri(self) -> str:
        """The tracking URI in force: the configured one, or a sqlite file under the data dir."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def windows_location(self) -> str:
        """The window store URI in force: the configured one, or file://DATA_DIR/windows."""
        return self.windows_uri or f"file://{(self.data_dir / 'windows').resolve()}"
