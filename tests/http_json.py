"""A JSON answer from a test's in-process HTTP server (the fake Prometheus APIs)."""

from __future__ import annotations

import http.server
import json
from typing import Any


def send_json(handler: http.server.BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
