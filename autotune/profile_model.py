"""``autotune profile``: measure a model's batch latency per batch size, and write its model-catalog entry.

The model is a Serve backend class as ``serve_configs/real-model.yaml`` takes it (``module:Class``,
constructed with no arguments, ``predict(items) -> outputs``). Run on a machine with the GPU the pools
use: the command times the constructor (the entry's ``load_s``), then ``predict`` on batches of each size,
rounds of all sizes in a shuffled order so that drift spreads over every size, and fits the simulator's
batch-time model ``batch_ms = fixed_ms + size * per_item_ms`` (times log-normal noise) by least squares.
The catalog keeps per-item time on the reference GPU (T4), so the measured per-item time is multiplied by
the measuring GPU's speed (``--gpu``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.table import Table

from autotune.errors import InputError

WARM_UP = 3  # calls at the largest size first: lazy initialization and caches are not batch time


@dataclass(frozen=True)
class Fitted:
    fixed_ms: float
    per_item_ms: float
    noise_sigma: float
    sizes: tuple[int, ...]
    median_ms: tuple[float, ...]
    p90_ms: tuple[float, ...]

    def batch_ms(self, size: int) -> float:
        return self.fixed_ms + size * self.per_item_ms


def time_batches(predict: Callable[[list[Any]], Sequence[Any]], body: Any, sizes: Sequence[int], repeats: int,
                 seed: int = 0, clock: Callable[[], float] = time.perf_counter) -> dict[int, list[float]]:
    """Milliseconds of ``predict`` on ``size`` copies of ``body``, ``repeats`` times per size."""
    rng = random.Random(seed)
    for _ in range(WARM_UP):
        predict([body] * max(sizes))
    out: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(repeats):
        order = list(sizes)
        rng.shuffle(order)
        for s in order:
            batch = [body] * s
            t = clock()
            got = predict(batch)
            out[s].append((clock() - t) * 1e3)
            if len(got) != s:
                raise InputError("command line", "--backend", f"predict returned {len(got)} outputs for {s} inputs")
    return out


def fit(timings: dict[int, list[float]]) -> Fitted:
    """The line through each size's median timing (least squares in relative error, so a large batch does not
    outweigh a small one); noise from the timings' spread around their size's median.

    Medians and a robust spread, because a timing taken while something else ran on the machine is an
    outlier of the machine, not of the model."""
    sizes = sorted(timings)
    if len(sizes) < 2:
        raise InputError("command line", "--batch-sizes", "at least two batch sizes are needed to fit a line")
    x = np.asarray(sizes, dtype=float)
    med = np.array([np.median(timings[s]) for s in sizes])
    w = 1.0 / np.maximum(med, 1e-9)
    per_item, fixed = np.polyfit(x, med, 1, w=w)
    if fixed < 0:  # no per-batch cost measurable: a line through the origin
        fixed, per_item = 0.0, float(np.sum(w * w * x * med) / np.sum(w * w * x * x))
    logs = np.concatenate([np.log(np.maximum(np.asarray(timings[s]), 1e-9) / m) for s, m in zip(sizes, med,
                                                                                               strict=True)])
    sigma = 1.4826 * float(np.median(np.abs(logs)))  # the median absolute deviation, as a normal's sigma
    return Fitted(float(fixed), max(float(per_item), 0.0), min(sigma, 1.0), tuple(sizes), tuple(float(m) for m in med),
                  tuple(float(np.percentile(timings[s], 90)) for s in sizes))


def catalog_entry(name: str, fitted: Fitted, speed: float, load_s: float, task: str, note: str) -> str:
    """The ``models.yaml`` entry, its source in a comment, as the catalog's other entries have."""
    entry = {name: {"task": task, "fixed_ms": round(fitted.fixed_ms, 3),
                    "per_item_ms": round(fitted.per_item_ms * speed, 4), "per_token_ms": 0.0, "max_tokens": 0,
                    "noise_sigma": round(fitted.noise_sigma, 3), "load_s": round(max(load_s, 0.1), 1)}}
    comment = "".join(f"  # {line}\n" for line in note.splitlines())
    head, _, body = yaml.safe_dump(entry, sort_keys=False).partition("\n")
    return f"{head}\n{comment}{body}"


def free_name(catalog: Path, name: str) -> str:
    """The catalog's text, if it can be read and does not have ``name`` yet (else InputError)."""
    try:
        old = catalog.read_text()
        have = yaml.safe_load(old) or {}
    except OSError as e:
        raise InputError(catalog, None, f"cannot read ({e.strerror})") from None
    except yaml.YAMLError:
        raise InputError(catalog, None, "not valid YAML") from None
    if name in have:
        raise InputError("command line", "--name", f"{name!r} is already in {catalog} (another name, or remove it)")
    return old


def append_entry(catalog: Path, name: str, text: str) -> None:
    """Add ``text`` to the catalog file, refusing a name it has; the result must load, or nothing is written."""
    from autotune.fileio import atomic_path
    from autotune.scenario import ModelProfile

    old = free_name(catalog, name)
    with atomic_path(catalog) as tmp:
        tmp.write_text(old.rstrip("\n") + "\n" + text)
        for v in yaml.safe_load(tmp.read_text()).values():
            ModelProfile(**v)  # the catalog as the simulator reads it, every entry


def _backend(spec: str) -> Any:
    module, sep, cls = spec.partition(":")
    if not sep or not module or not cls:
        raise InputError("command line", "--backend", f"expected module:Class, got {spec!r}")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise InputError("command line", "--backend", f"cannot import {spec} ({e})") from None


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise InputError("command line", "--batch-sizes", f"expected sizes like 1,2,4,8, got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise InputError("command line", "--batch-sizes", "sizes must be positive integers")
    return sizes


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("profile", help="measure a model's batch latency per batch size (a catalog entry)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", required=True, help="the model class, module:Class (as in real-model.yaml)")
    p.add_argument("--name", required=True, help="the model's name in the catalog (a scenario's `model:`)")
    p.add_argument("--input", help="JSON file with one request body (default: {})")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32", help="comma-separated (default 1,2,4,8,16,32)")
    p.add_argument("--repeats", type=int, default=20, help="timings per batch size (default 20)")
    p.add_argument("--gpu", default="T4", help="instance type of the GPU measured on (default T4, the reference)")
    p.add_argument("--task", help="what the model does, for the entry (default: the backend)")
    p.add_argument("--write", metavar="CATALOG", help="append the entry to this models.yaml (refused if the name "
                   "is taken); without it the entry is printed")
    p.set_defaults(func=profile_main)


def profile_main(args: argparse.Namespace) -> int:
    from autotune.cli_common import console, out
    from autotune.scenario import REFERENCE_GPU, instance_catalog

    sizes = _sizes(args.batch_sizes)
    if args.repeats < 3:
        raise InputError("command line", "--repeats", "at least 3")
    cat = instance_catalog()
    if args.gpu not in cat:
        raise InputError("command line", "--gpu", f"unknown instance type {args.gpu!r} (known: {', '.join(cat)})")
    speed = cat[args.gpu].mlperf_resnet50_offline / cat[REFERENCE_GPU].mlperf_resnet50_offline
    body: Any = {}
    if args.input:
        try:
            body = json.loads(Path(args.input).read_text())
        except (OSError, ValueError) as e:
            raise InputError(args.input, None, f"not a readable JSON request body ({e})") from None
    if args.write:
        free_name(Path(args.write), args.name)  # before the measuring, not after
    cls = _backend(args.backend)
    t0 = time.perf_counter()
    model = cls()
    load_s = time.perf_counter() - t0
    console.print(f"{args.backend}: constructed in {load_s:.1f} s; timing batches of {args.batch_sizes}, "
                  f"{args.repeats} times each")
    fitted = fit(time_batches(model.predict, body, sizes, args.repeats))
    table = Table(title=f"{args.name} on {args.gpu}: {fitted.fixed_ms:.3f} ms + {fitted.per_item_ms:.4f} ms/item, "
                        f"noise sigma {fitted.noise_sigma:.3f}")
    for col in ("batch", "median ms", "p90 ms", "fitted ms", "fit error"):
        table.add_column(col, justify="right")
    for s, med, p90 in zip(fitted.sizes, fitted.median_ms, fitted.p90_ms, strict=True):
        f = fitted.batch_ms(s)
        table.add_row(str(s), f"{med:.3f}", f"{p90:.3f}", f"{f:.3f}", f"{(f - med) / med:+.0%}" if med else "-")
    out.print(table)
    note = (f"Measured by `autotune profile --backend {args.backend} --gpu {args.gpu}`:\n"
            f"batch sizes {args.batch_sizes}, {args.repeats} timings each; load_s is the constructor's time\n"
            f"(a replica's start adds Serve's own: `autotune calibrate` measures the whole).")
    text = catalog_entry(args.name, fitted, speed, load_s, args.task or args.backend, note)
    if args.write:
        append_entry(Path(args.write), args.name, text)
        console.print(f"added {args.name!r} to {args.write}")
    else:
        print(text, end="")
    return 0
