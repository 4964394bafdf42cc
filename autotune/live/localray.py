"""A small local Ray cluster with fake GPUs, for the live tests, the demo and the benchmark.

Started with ``ray start --head --block`` in a new session so that stopping it
ends exactly the processes it started (signalled by id, never ``ray stop``,
which would also stop any other Ray on the machine). Every port is chosen
free, so it can run beside another Ray cluster.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

# Faster metrics: Ray's exporter every second (default 10 s), and Serve's
# autoscaling metrics every second, so both autoscalers see fresh data.
FAST_METRICS_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_metrics_report_interval_ms": "1000",
    "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
    "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRay:
    def __init__(self, temp_dir: Path, num_cpus: int = 4, num_gpus: int = 8,
                 resources: Mapping[str, float] | None = None, env: Mapping[str, str] | None = None) -> None:
        self.temp_dir = Path(temp_dir)
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.resources = dict(resources or {"L4": 8})
        self.env = dict(env or {})  # for every process of the cluster (Serve reads some settings per process)
        self.ports = {k: free_port() for k in ("gcs", "dashboard", "metrics", "http", "grpc", "client",
                                                "node_manager", "object_manager", "agent_listen", "agent_grpc",
                                                "runtime_env")}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['dashboard']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}/"

    def start(self, timeout_s: float = 120.0) -> LocalRay:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        p = self.ports
        cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
               "--temp-dir", str(self.temp_dir), "--num-cpus", str(self.num_cpus), "--num-gpus", str(self.num_gpus),
               "--resources", json.dumps(self.resources), "--include-dashboard", "true",
               "--dashboard-host", "127.0.0.1", "--node-ip-address", "127.0.0.1",
               "--port", str(p["gcs"]), "--dashboard-port", str(p["dashboard"]),
               "--metrics-export-port", str(p["metrics"]), "--ray-client-server-port", str(p["client"]),
               "--node-manager-port", str(p["node_manager"]), "--object-manager-port", str(p["object_manager"]),
               "--dashboard-agent-listen-port", str(p["agent_listen"]),
               "--dashboard-agent-grpc-port", str(p["agent_grpc"]), "--runtime-env-agent-port", str(p["runtime_env"])]
        log = open(self.temp_dir / "ray-start.log", "wb")  # noqa: SIM115 - lives as long as the cluster
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **FAST_METRICS_ENV, **self.env})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited ({self.temp_dir / 'ray-start.log'})")
            try:
                if httpx.get(f"{self.dashboard_url}/api/serve/applications/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"Ray dashboard not up after {timeout_s:.0f}s")

    def _session_pids(self) -> list[int]:
        """Every live process in the session we started (workers included)."""
        assert self.proc is not None
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) == self.proc.pid and fields[0] != "Z":  # field 6 (session); skip zombies
                out.append(int(d.name))
        return out

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self._session_pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace_s
            while self._session_pids() and time.monotonic() < deadline:
                time.sleep(0.5)
            if not self._session_pids():
                break
        self.proc.wait(timeout=10)
        self.proc = None

    def deploy(self, app_config: Mapping[str, Any], timeout_s: float = 120.0) -> None:
        """Deploy one app through the REST API and wait until it is RUNNING."""
        body = {"http_options": {"host": "127.0.0.1", "port": self.ports["http"]},
                "grpc_options": {"port": self.ports["grpc"]}, "applications": [dict(app_config)]}
        r = httpx.put(f"{self.dashboard_url}/api/serve/applications/", json=body, timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"deploy failed: HTTP {r.status_code}: {r.text[:500]}")
        self.wait_app(str(app_config["name"]), "RUNNING", timeout_s)

    def details(self) -> dict[str, Any]:
        return httpx.get(f"{self.dashboard_url}/api/serve/applications/", timeout=10).json()

    def wait_app(self, app: str, status: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            a = self.details().get("applications", {}).get(app)
            last = a and a.get("status")
            if last == status:
                return
            if last == "DEPLOY_FAILED":
                raise RuntimeError(f"app {app} failed to deploy: {a.get('message')}")
            time.sleep(1.0)
        raise TimeoutError(f"app {app} is {last}, not {status}, after {timeout_s:.0f}s")

    def delete_apps(self) -> None:
        httpx.delete(f"{self.dashboard_url}/api/serve/applications/", timeout=60)

    def __enter__(self) -> LocalRay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
