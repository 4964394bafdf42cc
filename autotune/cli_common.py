"""Command-line pieces shared by every subcommand: trace options, console, errors."""

from __future__ import annotations

import argparse

from rich.console import Console

from autotune.workload.arrivals import TraceOptions

console = Console(stderr=True)  # progress, notes, errors
out = Console()  # results
if not out.is_terminal:
    out = Console(width=200)  # a table piped to a file or CI log should not wrap


def add_trace_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("trace options")
    g.add_argument("--trace", help="trace CSV replacing the scenario's workload")
    g.add_argument("--time-scale", type=float, help="multiply arrival times by F (0.5 compresses 2x)")
    g.add_argument("--rate-scale", type=float, help="multiply the request rate by F")
    g.add_argument("--mean-rate", type=float, help="rescale to a mean of R req/s")
    g.add_argument("--duration", type=float,
                   help="keep the first S seconds (after time scaling; a synthetic workload's generator keeps its shape"
                   " over the scenario's duration, and runs for S if S is longer)")


def trace_options(args: argparse.Namespace) -> TraceOptions:
    return TraceOptions(trace=args.trace, time_scale=args.time_scale, rate_scale=args.rate_scale,
                        mean_rate=args.mean_rate, duration_s=args.duration)
