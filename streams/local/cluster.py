"""A whole advrec deployment on this machine: broker, worker, trainer, scorer as real processes.

Used by `advrec demo`, `benchmarks/freshness.py` and the end-to-end tests. Every process is a
real `advrec <command>` child configured only by ADVREC_* variables, as in production; this
module only chooses ports, a state directory, and short windows so a loop closes in seconds.
Besides worker, trainer and scorer it can run an undefended shadow pair (`shadow-trainer`,
`shadow-scorer`): the same stream and requests, no quarantine, its own model name, never promoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams.local.broker import EmbeddedBroker, KafkaBroker, TansuBroker, free_port
from streams.local.processes import AdvrecProcess, scrape_metrics

__all__ = ["LocalCluster", "ClusterConfig", "COMMANDS"]


@dataclass
class ClusterConfig:
    """Knobs of a local cluster: where state goes and how fast the loop turns."""

    state_dir: Path
    bootstrap: str = ""  # empty: start an embedded broker
    broker_engine: str = "auto"  # of the embedded broker: kafka where Java runs, else tansu
    window_max_events: int = 4_000
    window_max_seconds: float = 8.0
    # --flush-after: once the windows stop coming (the end of a replay), train the last ones too; longer
    # than window_max_seconds, so that it never fires while windows still close on time.
    trainer_args: tuple[str, ...] = (
        "--min-batch-rows",
        "6000",
        "--flush-after",
        "10",
        "--first-epochs",
        "20",
        "--epochs",
        "4",
    )
    # The undefended shadow: plain BPR on every event (no quarantine), its own model name, never
    # promoted; it trains on the main trainer's schedule (`trainer_args` follow these).
    shadow_trainer_args: tuple[str, ...] = ("--model", "bpr", "--no-quarantine")
    shadow_model_name: str = "advrec-shadow"
    scorer_poll_seconds: float = 3.0
    extra_env: dict[str, str] = field(default_factory=dict)


# role → the advrec command it runs (the shadow roles add their arguments and environment below)
COMMANDS = {
    "worker": ["worker"],
    "trainer": ["train"],
    "scorer": ["scorer"],
    "shadow-trainer": ["train"],
    "shadow-scorer": ["scorer"],
}


class LocalCluster:
    """Start/stop the processes of one deployment; each has a log file under the state dir."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.broker: KafkaBroker | TansuBroker | None = None
        self.bootstrap = config.bootstrap
        self.ports = {role: free_port() for role in COMMANDS}
        self.processes: dict[str, AdvrecProcess] = {}

    @property
    def mlflow_uri(self) -> str:
        """The local MLflow store every process of this cluster shares."""
        return f"sqlite:///{(self.config.state_dir / 'mlflow.db').resolve()}"

    @property
    def shadow_recommendations_topic(self) -> str:
        """Where the shadow scorer answers the same `rec.requests` the main scorer answers."""
        return "shadow.recommendations"

    def role_env(self, role: str) -> dict[str, str]:
        """The environment of one role: the shared one, plus the shadow's own model, group, ports and state."""
        env = self.env()
        port = str(self.ports[role])
        if role.startswith("shadow-"):
            env.update(
                ADVREC_DATA_DIR=str(self.config.state_dir / "shadow"),
                ADVREC_MODEL_NAME=self.config.shadow_model_name,
                ADVREC_PROMOTION="false",
                ADVREC_SERVE_ALIAS="shadow",
                # undefended all the way: its popularity fallback counts every account, trusted or not
                ADVREC_SCORER_TRUSTED_POPULARITY="false",
                ADVREC_GROUP_SUFFIX="-shadow",
                ADVREC_RECOMMENDATIONS_TOPIC=self.shadow_recommendations_topic,
                ADVREC_WINDOWS_URI=f"file://{(self.config.state_dir / 'windows').resolve()}",
            )
        key = {"worker": "ADVREC_WEB_PORT", "trainer": "ADVREC_TRAINER_METRICS_PORT"}.get(
            role.removeprefix("shadow-"), "ADVREC_SCORER_METRICS_PORT"
        )
        env[key] = port
        if role.endswith("trainer"):
            # Two trainers share the cores: one thread each trains both at once instead of thrashing.
            env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        return env

    def env(self) -> dict[str, str]:
        """The ADVREC_* environment shared by every process."""
        quirks = (
            {} if self.broker is None else {"ADVREC_TANSU_WORKAROUNDS": "1" if self.broker.engine == "tansu" else "0"}
        )
        return {
            "ADVREC_KAFKA_BOOTSTRAP": self.bootstrap,
            **quirks,
            "ADVREC_DATA_DIR": str(self.config.state_dir),
            "ADVREC_MLFLOW_TRACKING_URI": self.mlflow_uri,
            "ADVREC_WEB_PORT": str(self.ports["worker"]),
            "ADVREC_TRAINER_METRICS_PORT": str(self.ports["trainer"]),
            "ADVREC_SCORER_METRICS_PORT": str(self.ports["scorer"]),
            "ADVREC_WINDOW_MAX_EVENTS": str(self.config.window_max_events),
            "ADVREC_WINDOW_MAX_SECONDS": str(self.config.window_max_seconds),
            "ADVREC_SCORER_POLL_SECONDS": str(self.config.scorer_poll_seconds),
            # one box, no `advrec detector` role: the worker runs the detector, whatever the shell says
            "ADVREC_FRAUD_IN_WORKER": "true",
            **self.config.extra_env,
        }

    def metrics_url(self, name: str) -> str:
        """Where process `name` serves its Prometheus metrics."""
        return f"http://127.0.0.1:{self.ports[name]}/metrics"

    def start_broker(self) -> str:
        """Start the embedded broker unless one was given; return the bootstrap address."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap:
            self.broker = EmbeddedBroker(
                self.config.state_dir / "kafka",
                log_path=self.config.state_dir / "broker.log",
                engine=self.config.broker_engine,
            ).start()
            self.bootstrap = self.broker.bootstrap
        self.init_mlflow()
        return self.bootstrap

    def init_mlflow(self) -> None:
        """Create the MLflow store once, before several processes open it (their migrations would race)."""
        import logging

        from mlflow.tracking import MlflowClient

        # "Creating initial MLflow database tables" is MLflow talking to itself
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        MlflowClient(tracking_uri=self.mlflow_uri, registry_uri=self.mlflow_uri).search_experiments()

    def start(self, name: str, args: list[str] | None = None, wait: bool = True) -> AdvrecProcess:
        """Start process `name` (a role of COMMANDS) and wait until its metrics answer."""
        extra = {
            "trainer": self.config.trainer_args,
            "shadow-trainer": (*self.config.shadow_trainer_args, *self.config.trainer_args),
        }
        command = [*COMMANDS[name], *extra.get(name, ())]
        process = AdvrecProcess(args or command, self.role_env(name), self.config.state_dir / f"{name}.log").start()
        self.processes[name] = process
        if wait:
            process.wait_http(self.metrics_url(name), timeout_s=90)
        return process

    def metrics(self, name: str) -> dict[str, float]:
        """Current samples of process `name` ({} if it does not answer)."""
        try:
            return scrape_metrics(self.metrics_url(name), timeout_s=2)
        except OSError:
            return {}

    def stop(self) -> None:
        """Stop every process (SIGTERM to all at once, then SIGKILL to the late) and the embedded broker."""
        processes = list(self.processes.values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> LocalCluster:
        self.start_broker()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
