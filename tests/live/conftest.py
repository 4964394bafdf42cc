"""Fixtures for the live-controller tests: a real local Ray cluster, the CLI, load and a faulty proxy."""

from __future__ import annotations

import argparse
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from autotune.live.localray import LocalRay, free_port
from autotune.workload.arrivals import Arrivals

# The fixtures below start a real Ray cluster (and Prometheus): a test that asks for one is an integration test
# wherever it lives, so `make test-fast` leaves it out even without a mark of its own.
REAL_CLUSTER_FIXTURES = frozenset({"ray_cluster", "faulty_proxy", "prometheus"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRay]:
    """One cluster for every real-cluster test (start-up is the slow part): 4 CPUs, 8 fake L4s, a T4, an A100."""
    cluster = LocalRay(tmp_path_factory.mktemp("ray"), num_cpus=4, num_gpus=10,
                       resources={"L4": 8, "T4": 1, "A100": 1})
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def run_cli(*argv: str) -> int:
    """The live subcommands as the main CLI runs them (register + func), InputError → exit 2."""
    from autotune.errors import InputError
    from autotune.live.cli import register

    parser = argparse.ArgumentParser(prog="autotune")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(list(argv))
    try:
        return int(args.func(args))
    except InputError as e:
        print(f"error: {e}")
        return 2


def constant_load(rate: float, duration_s: float, seed: int = 0) -> Arrivals:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / rate, int(rate * duration_s * 1.2)))
    t = t[t < duration_s]
    return Arrivals(t, np.zeros(t.size, dtype=np.float32), duration_s, f"poisson:{rate}")


class Background(threading.Thread):
    """Run ``fn`` in a thread and keep its result (or exception) for the test to check."""

    def __init__(self, fn: Any, *args: Any) -> None:
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.result: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:  # noqa: BLE001 - reported by value()
            self.error = e

    def value(self, timeout: float) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "background task did not finish"
        if self.error is not None:
            raise self.error
        return self.result


class FaultyProxy:
    """An HTTP reverse proxy in front of the dashboard that can answer 503 or stop listening."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.mode = "up"
        self.server: http.server.ThreadingHTTPServer | None = None
        self.listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def listen(self) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if proxy.mode == "503":
                    self.send_response(503)
                    self.end_headers()
                    return
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                r = httpx.request(self.command, proxy.upstream + self.path, content=body, timeout=30,
                                  headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening: connections are refused until ``listen()``."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def wait_for(pred: Any, timeout_s: float, every_s: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every_s)
    return bool(pred())


@pytest.fixture()
def faulty_proxy(ray_cluster: LocalRay) -> Iterator[FaultyProxy]:
    p = FaultyProxy(ray_cluster.dashboard_url)
    yield p
    p.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Prometheus:
    """A real Prometheus server (Debian's package; `make test` installs it) scraping given targets every second."""

    def __init__(self, tmp: Path, targets: list[str]) -> None:
        import shutil
        import subprocess

        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("no prometheus binary: `make test` installs Debian's package (apt-get install prometheus)")
        self.port = free_port()
        cfg = tmp / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ray\n    static_configs:\n"
                       f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
        self.log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(self.ready, 30, 0.3):
            self.stop()
            raise RuntimeError(f"prometheus did not come up ({tmp / 'prometheus.log'})")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:  # noqa: BLE001 - a hung server is killed
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def prometheus(ray_cluster: LocalRay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping the test cluster's metrics endpoint, as a production cluster's would."""
    target = ray_cluster.metrics_url.removeprefix("http://").removesuffix("/metrics")
    p = Prometheus(tmp_path_factory.mktemp("prometheus"), [target])
    yield p
    p.stop()
