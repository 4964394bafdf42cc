"""The controller's traffic record and the optimizer run it starts on it, in a process of its own.

``--optimize-every D`` makes the controller append every window's arrivals to a rate trace
(``start_s,requests``, what ``--trace`` reads) in its optimize folder, and every D seconds start
``autotune optimize`` on the record in a separate process: the optimizer's simulations take minutes of CPU,
and the control loop must never wait for them. The loop only polls the process (never blocks on it); when it
is done, its ``chosen.json`` and ``report.csv`` become an :class:`~autotune.live.champion.Offer`: the
challenger's and the running policy's cost and SLO on the later part of the record, the part the choice was
not made on.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autotune.errors import InputError
from autotune.live.champion import Offer

RECORD = "recorded.csv"


@dataclass
class TrafficRecord:
    """The windows' arrival counts as a rate trace on disk, appended as they come (a crash loses one line)."""

    path: Path
    t0: float | None = None
    windows: int = 0
    _fh: IO[str] | None = None

    def add(self, t_end: float, window_s: float, arrivals: int) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", newline="")  # noqa: SIM115 - kept open for the controller's life
            self._fh.write("start_s,requests\n")
        start = t_end - window_s
        if self.t0 is None:
            self.t0 = start
        self._fh.write(f"{max(0.0, start - self.t0):.3f},{int(arrivals)}\n")
        self._fh.flush()
        self.windows += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass
class Reoptimizer:
    """Starts ``autotune optimize`` on the record every ``every_s`` and turns its result into an offer."""

    folder: Path
    scenario: str  # name or path, as the optimizer takes it
    champion: str  # the running policy's spec: always a candidate, so the offer compares like with like
    target: float
    every_s: float
    min_windows: int = 24
    extra_args: Sequence[str] = ()
    started_at: float | None = None
    since: float | None = None
    runs: int = 0
    proc: subprocess.Popen[bytes] | None = None
    out: Path | None = None
    log_path: Path | None = None
    record: TrafficRecord = field(init=False)

    def __post_init__(self) -> None:
        self.record = TrafficRecord(self.folder / RECORD)

    def command(self, out: Path) -> list[str]:
        return [sys.executable, "-m", "autotune", "optimize", "--scenario", self.scenario, "--trace",
                str(self.record.path), "--target", f"{self.target:g}", "--candidate", self.champion,
                "--out", str(out), *self.extra_args]

    def due(self, now: float) -> bool:
        """Every ``every_s`` from the first look (the first run has that much traffic to choose on), once the
        record holds ``min_windows``, and never while a run is going."""
        if self.since is None:
            self.since = now
        if self.proc is not None or self.record.windows < self.min_windows:
            return False
        return now - (self.started_at if self.started_at is not None else self.since) >= self.every_s

    def start(self, now: float) -> dict[str, Any]:
        self.runs += 1
        self.out = self.folder / f"run-{self.runs:03d}"
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out / "optimize.log"
        cmd = self.command(self.out)
        with open(self.log_path, "wb") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started_at = now
        return {"event": "optimize", "run": self.runs, "windows": self.record.windows, "out": str(self.out),
                "command": " ".join(cmd[1:])}

    def poll(self) -> tuple[Offer | None, dict[str, Any] | None]:
        """``(offer, record)`` once the running optimizer has finished; ``(None, None)`` while it runs."""
        if self.proc is None or self.proc.poll() is None:
            return None, None
        rc, out = self.proc.returncode, self.out
        self.proc = None
        assert out is not None
        if rc != 0:
            tail = (self.log_path.read_text(errors="replace").strip().splitlines() or [""])[-1] \
                if self.log_path else ""
            return None, {"event": "optimize-failed", "run": self.runs, "exit": rc, "error": tail[-300:]}
        try:
            return read_offer(out, self.champion), None
        except InputError as e:
            return None, {"event": "optimize-failed", "run": self.runs, "error": str(e)}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        self.record.close()


def _report_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path, newline="") as fh:
        return {(r["candidate"], r["part"]): r for r in csv.DictReader(fh)}


def read_offer(out: Path, champion: str) -> Offer:
    """The offer in an optimizer run's folder: the chosen policy, and it and the champion on the report part."""
    chosen_path, report_path = out / "chosen.json", out / "report.csv"
    for p in (chosen_path, report_path):
        if not p.exists():
            raise InputError(str(p), "file", "the optimizer run wrote no such file")
    chosen = json.loads(chosen_path.read_text())
    rows = _report_rows(report_path)
    name = str(chosen.get("chosen", ""))
    mine, theirs = rows.get((name, "report")), rows.get((champion, "report"))
    if mine is None:
        raise InputError(str(report_path), "candidate", f"no report-part row for the chosen {name!r}")
    if theirs is None:
        raise InputError(str(report_path), "candidate", f"no report-part row for the running {champion!r}")

    def num(r: dict[str, str], k: str) -> float:
        try:
            return float(r[k])
        except (KeyError, ValueError):
            return math.nan

    return Offer(policy=str(chosen.get("policy", name)), cost_usd=num(mine, "cost_usd"),
                 slo=num(mine, "slo_attainment"), champion_cost_usd=num(theirs, "cost_usd"),
                 champion_slo=num(theirs, "slo_attainment"), target=float(chosen.get("target", math.nan)),
                 source=str(out / "report.md"), against=champion)
