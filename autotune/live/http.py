"""HTTP with retries and exponential backoff, for the dashboard and metrics endpoints.

An endpoint that is down, times out or answers 5xx is retried a few times
within one control step; after that :class:`Unreachable` tells the caller to
keep its last state and try again next interval (the controller never crashes
on a flaky endpoint). 4xx is not retried: the request itself is wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class Unreachable(Exception):
    """The endpoint did not answer usefully after every retry."""


class RequestRejected(Exception):
    """The endpoint answered 4xx: retrying will not help."""

    def __init__(self, url: str, status: int, body: str) -> None:
        self.status = status
        super().__init__(f"{url}: HTTP {status}: {body[:300]}")


class RetryingClient:
    def __init__(self, timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = httpx.Client(timeout=timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                r = self.client.request(method, url, **kwargs)
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if r.status_code >= 500:
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code >= 400:
                raise RequestRejected(url, r.status_code, r.text)
            return r
        raise Unreachable(f"{method} {url}: {last} (after {self.retries + 1} attempts)")

    def get_text(self, url: str) -> str:
        return self.request("GET", url).text

    def get_json(self, url: str) -> Any:
        r = self.request("GET", url)
        try:
            return r.json()
        except ValueError as e:
            raise Unreachable(f"GET {url}: not JSON ({e})") from None

    def close(self) -> None:
        self.client.close()
