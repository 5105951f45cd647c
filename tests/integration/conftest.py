"""Helpers shared by the integration tests: waiting on real processes, a real `mlflow server`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from streams.local.broker import choose_engine, free_port


def broker_quirks() -> dict[str, str]:
    """The env that tells advrec processes to work around Tansu, when the session's broker is Tansu."""
    return {"ADVREC_TANSU_WORKAROUNDS": "1"} if choose_engine("auto") == "tansu" else {}


@contextmanager
def mlflow_server_process(root: Path):
    """Run `mlflow server` (sqlite backend, proxied local artifacts) on loopback; yield (url, stop)."""
    port = free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        # The server leaves worker children behind: stop the whole process group.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_tail = (root / "server.log").read_text()[-3000:]
                    raise RuntimeError(f"mlflow server did not start:\n{log_tail}") from None
                time.sleep(0.3)
        yield url, stop
    finally:
        stop()
        log.close()


def wait_for(predicate, timeout_s: float, what: str, *processes, interval_s: float = 0.3):
    """Poll `predicate` until it returns something truthy (returned); else fail with the processes' logs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(p.log_tail() for p in processes if p))


@contextmanager
def prometheus_process(home: Path, config: str):
    """Debian's `prometheus` with this config on a loopback port, until ready; yields its base URL."""
    (home / "prometheus.yml").write_text(config)
    port = free_port()
    with open(home / "prometheus.log", "w") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def ready():
                if process.poll() is not None:
                    raise AssertionError(f"prometheus exited:\n{(home / 'prometheus.log').read_text()[-4000:]}")
                try:
                    return urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200
                except OSError:
                    return False

            wait_for(ready, 60, "prometheus ready")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
