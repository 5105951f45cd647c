"""Running advrec processes as children (the demo and the tests): start, wait ready, stop, kill -9.

Each child is a real `advrec <command>` process in its own process group, configured only by
ADVREC_* environment variables, exactly as ops would run it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["AdvrecProcess", "scrape_metrics", "metric_total"]


def scrape_metrics(url: str, timeout_s: float = 5.0) -> dict[str, float]:
    """Fetch a Prometheus endpoint; return {'name{label="v"}': value} for every sample."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def metric_total(samples: dict[str, float], name: str) -> float:
    """Sum of every sample of `name` across its labels."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


class AdvrecProcess:
    """One `advrec <args>` child process with its own environment and log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The child's command line: `advrec <args>` under this Python."""
        return [sys.executable, "-m", "streams.cli", *self.args]

    def start(self) -> AdvrecProcess:
        """Launch the child in a new process group."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_http(self, url: str, timeout_s: float = 60.0) -> None:
        """Wait until `url` answers (any HTTP status), or raise with the log's tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"advrec {' '.join(self.args)} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise TimeoutError(f"{url} not answering after {timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the child's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill9(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> None:
        """SIGTERM the process group without waiting (`stop` waits)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL if it has not exited in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
