"""``autotune calibrate``: fit the scenario's pools and traffic to a Ray Serve app's own metrics.

Registered into the main CLI by ``register``; nothing here imports ray, and the HTTP client loads only
when the command runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.table import Table

from autotune.cli_common import console, out
from autotune.errors import InputError


def register(subparsers: Any) -> None:
    c = subparsers.add_parser(
        "calibrate", help="fit the scenario's service times, start-up and traffic to a Ray Serve app's metrics",
        description="Fit each pool's batch service time (fixed + per-item, noise), replica start-up and the "
                    "traffic to Ray Serve's own metrics, and write the scenario with the fitted values and "
                    "their residuals. Bad or thin data: an error, and no file.")
    c.add_argument("--scenario", required=True, help="starting scenario name (envs/NAME.yaml) or path")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--prometheus", metavar="URL", help="a Prometheus server that scrapes the cluster: read the "
                     "last --last seconds of the app's Serve metrics")
    src.add_argument("--metrics-url", metavar="URL", action="append",
                     help="Ray metrics endpoint to scrape live for --span seconds, repeat per node")
    c.add_argument("--app", help="Serve application name (default: the scenario's name)")
    c.add_argument("--last", type=float, default=3600.0, help="with --prometheus: seconds of history (default 3600)")
    c.add_argument("--span", type=float, default=120.0, help="with --metrics-url: seconds to scrape (default 120)")
    c.add_argument("--step", type=float, default=10.0,
                   help="seconds per window of the fit (default 10; at least Ray's metrics export interval)")
    c.add_argument("--out", required=True, help="calibrated scenario YAML to write")
    c.set_defaults(func=calibrate_main)


def _url(flag: str, url: str) -> None:
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
        raise InputError("command line", flag, f"not an http(s) URL: {url!r}")


def _positive(flag: str, v: float) -> None:
    if not v > 0:
        raise InputError("command line", flag, "must be positive")


def calibrate_main(args: argparse.Namespace) -> int:
    from autotune.calibrate.calibration import calibrate
    from autotune.calibrate.scenario_out import calibrated_text
    from autotune.calibrate.sources import from_endpoints, from_prometheus
    from autotune.fileio import atomic_path
    from autotune.live.http import RetryingClient
    from autotune.scenario import load_scenario

    sc = load_scenario(args.scenario)
    app = args.app or sc.name
    for flag in ("--last", "--span", "--step"):
        _positive(flag, getattr(args, flag[2:]))
    client = RetryingClient(timeout_s=30.0)
    try:
        if args.prometheus:
            _url("--prometheus", args.prometheus)
            end = time.time()
            samples = from_prometheus(client, args.prometheus, app, end, args.last, args.step)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))
            source, span = args.prometheus, f"last {args.last:g} s to {stamp}"
        else:
            for u in args.metrics_url:
                _url("--metrics-url", u)
            console.print(f"scraping {', '.join(args.metrics_url)} every {args.step:g} s for {args.span:g} s")
            samples = from_endpoints(client, args.metrics_url, args.span, args.step)
            source, span = ", ".join(args.metrics_url), f"{args.span:g} s scraped live"
    finally:
        client.close()
    cal = calibrate(sc, samples, app, source, span)
    text = calibrated_text(Path(sc.source).read_text(), cal.changes(sc), cal.record())
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)
        load_scenario(tmp)  # the file must load as it will be used; a failure leaves no file
    out.print(_table(sc.name, cal))
    console.print(f"wrote {args.out} (diff it against {sc.source})")
    return 0


def _table(name: str, cal: Any) -> Table:
    table = Table(title=f"calibration of {name} from {cal.source} ({cal.span})")
    for col in ("pool", "value", "start", "fitted", "residual / se", "samples"):
        table.add_column(col, justify="left" if col in ("pool", "value") else "right")
    for p in cal.pools:
        s, st = p.service, p.start
        n = f"{s.batches:,} batches in {s.windows} windows"
        table.add_row(p.name, "fixed_ms", f"{st.fixed_ms:.2f}", f"{s.fixed_ms:.2f}", f"± {s.fixed_se_ms:.2f}", n)
        table.add_row("", "per_item_ms", f"{st.per_item_ms:.2f}", f"{s.per_item_ms:.2f}", f"± {s.per_item_se_ms:.2f}",
                      f"{s.sizes_seen} batch sizes")
        table.add_row("", "noise_sigma", f"{st.noise_sigma:.3f}", "(kept)" if s.noise_held else f"{s.noise_sigma:.3f}",
                      f"buckets rms {s.bucket_rms:.1%}, worst {s.bucket_worst:.1%}", "")
        up = p.startup
        table.add_row("", "load_s", f"{st.load_s:.2f}", f"{up.load_s:.2f}" if up else "(kept)",
                      f"in ({up.low_s:g}, {up.high_s:g}] s" if up else "",
                      f"{up.starts} replica starts" if up else "no replica started")
    t = cal.traffic
    table.add_row("traffic", "mean_rate", "", f"{t.mean_rate:.3g}", "", f"{t.requests:,} requests")
    table.add_row("", "dispersion", "", f"{t.dispersion:.2f}", f"{t.slot_s:.3g} s slots", "")
    if t.daily_amplitude is not None:
        table.add_row("", "daily amplitude", "", f"{t.daily_amplitude:.2f}", f"rms {t.daily_rms:.1%}", "")
    lat = cal.latency
    if lat.requests:
        table.add_row("measured", "p50 / p99 ms", "", f"{lat.p50_ms:.0f} / {lat.p99_ms:.0f}", "",
                      f"{lat.requests:,} requests")
    return table
