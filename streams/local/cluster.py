"""A whole advrec deployment on this machine: broker, worker, trainer, scorer as real processes.

Used by `advrec demo`, `benchmarks/freshness.py` and the end-to-end tests. Every process is a
real `advrec <command>` child configured only by ADVREC_* variables, as in production; this
module only chooses ports, a state directory, and short windows so a loop closes in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams.local.broker import EmbeddedBroker, KafkaBroker, TansuBroker, free_port
from streams.local.processes import AdvrecProcess, scrape_metrics

__all__ = ["LocalCluster", "ClusterConfig"]


@dataclass
class ClusterConfig:
    """Knobs of a local cluster: where state goes and how fast the loop turns."""

    state_dir: Path
    bootstrap: str = ""  # empty: start an embedded broker
    broker_engine: str = "auto"  # of the embedded broker: kafka where Java runs, else tansu
    window_max_events: int = 4_000
    window_max_seconds: float = 8.0
    trainer_args: tuple[str, ...] = ("--min-batch-rows", "6000", "--first-epochs", "20", "--epochs", "4")
    scorer_poll_seconds: float = 3.0
    extra_env: dict[str, str] = field(default_factory=dict)


class LocalCluster:
    """Start/stop the processes of one deployment; each has a log file under the state dir."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.broker: KafkaBroker | TansuBroker | None = None
        self.bootstrap = config.bootstrap
        self.ports = {"worker": free_port(), "trainer": free_port(), "scorer": free_port()}
        self.processes: dict[str, AdvrecProcess] = {}

    @property
    def mlflow_uri(self) -> str:
        """The local MLflow store every process of this cluster shares."""
        return f"sqlite:///{(self.config.state_dir / 'mlflow.db').resolve()}"

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
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=self.mlflow_uri, registry_uri=self.mlflow_uri).search_experiments()

    def start(self, name: str, args: list[str] | None = None, wait: bool = True) -> AdvrecProcess:
        """Start process `name` (worker, trainer or scorer) and wait until its metrics answer."""
        command = {"worker": ["worker"], "trainer": ["train", *self.config.trainer_args], "scorer": ["scorer"]}[name]
        process = AdvrecProcess(args or command, self.env(), self.config.state_dir / f"{name}.log").start()
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
        """Stop every process (SIGTERM, then SIGKILL) and the embedded broker."""
        for process in reversed(list(self.processes.values())):
            process.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> LocalCluster:
        self.start_broker()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
