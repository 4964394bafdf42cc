"""A short recorded traffic for the optimize tests: a rate trace, 25 minutes of per-minute counts; and a small
in-process server answering Prometheus' query API."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from tests.http_json import send_json


def write_rate_trace(path: Path, minutes: int, mean: float = 1200.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    shape = 1.0 + 0.5 * np.sin(np.linspace(0.0, 2.0 * np.pi, minutes))
    counts = rng.poisson(mean * shape)
    path.write_text("start_s,requests\n" + "".join(f"{60 * k},{c}\n" for k, c in enumerate(counts)))
    return path


@pytest.fixture
def short_trace(tmp_path: Path) -> Path:
    return write_rate_trace(tmp_path / "traffic.csv", 25)


Answer = Callable[[str, float], tuple[int, object]]  # (query, time) -> (HTTP status, JSON body)


class FakePrometheus:
    """A small in-process HTTP server speaking Prometheus' instant query API (``/api/v1/query``), answering
    with ``answer(query, time)``; every query it was asked is kept in ``queries``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.queries: list[tuple[str, float]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlparse(self.path)
                q = parse_qs(url.query)
                if url.path != "/api/v1/query" or "query" not in q:
                    status, body = 404, {"status": "error", "error": f"no route {url.path}"}
                else:
                    query, t = q["query"][0], float(q.get("time", ["0"])[0])
                    fake.queries.append((query, t))
                    status, body = fake.answer(query, t)
                send_json(self, status, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def matrix(series: list[tuple[dict[str, str], list[tuple[float, float]]]]) -> dict[str, object]:
    """A successful range-selector answer: one ``(metric labels, [(t, value), ...])`` per series."""
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {**labels, "job": "ray", "instance": "node:8080"}, "values": [[t, f"{v:g}"] for t, v in pts]}
        for labels, pts in series]}}


@pytest.fixture
def fake_prometheus() -> Iterator[Callable[[Answer], FakePrometheus]]:
    servers: list[FakePrometheus] = []

    def start(answer: Answer) -> FakePrometheus:
        servers.append(FakePrometheus(answer))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
