"""``autotune control`` and ``autotune loadgen``: registered into the main CLI by ``register``.

Nothing here imports ray; the HTTP clients and prometheus-client load only
when a command runs, so ``autotune --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from autotune.cli_common import add_trace_options, console, trace_options
from autotune.core.guards import LIVE_GUARDS, GuardConfig
from autotune.errors import InputError

# Each guard limit's flag; its help and default come from GuardConfig, so the simulator's defaults and these agree.
GUARD_FLAGS = {"max_step_up": "--max-step-up", "max_step_up_ratio": "--max-step-up-ratio",
               "max_step_down": "--max-step-down", "max_step_down_ratio": "--max-step-down-ratio",
               "up_cooldown_s": "--up-cooldown", "down_cooldown_s": "--down-cooldown",
               "hold_while_starting": "--hold-while-starting", "placement_grace_s": "--placement-grace"}


def _duration(text: str) -> float:
    """Seconds from ``600``, ``90s``, ``15m`` or ``2h`` (argparse turns the ValueError into a usage error)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip().lower()
    scale = units.get(t[-1:], None)
    value = float(t[:-1] if scale else t)
    if not value > 0 or value != value:
        raise ValueError(text)
    return value * (scale or 1.0)


def _positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise InputError("command line", name, "must be positive")


def register(subparsers: Any) -> None:
    c = subparsers.add_parser("control", help="run a policy against a live Ray Serve application",
                              description="Observe a Ray Serve app, decide with a policy, guard, and act.")
    c.add_argument("--serve-address", default="http://127.0.0.1:8265", help="Ray dashboard address")
    c.add_argument("--app", help="Serve application name (default: the scenario's name)")
    c.add_argument("--scenario", default="live-demo", help="scenario name or YAML path (pools, SLO, prices)")
    c.add_argument("--policy", default="hpa",
                   help="static[:N], ray-default, ray-tuned, hpa, headroom[:M], burst[:M], predictive[:M], or "
                        "policies/NAME.zip; POLICY+crowd:K holds at least what a K x surge of the calm load needs, "
                        "POLICY+hold:K that and no more while it carries the load")
    c.add_argument("--dry-run", action="store_true", help="decide and log, change nothing")
    c.add_argument("--interval", type=float, help="seconds between decisions (default: the scenario's)")
    c.add_argument("--sample-interval", type=float, help="seconds between metric samples (default: interval/5)")
    c.add_argument("--prometheus-url", action="append",
                   help="Ray metrics endpoint, repeat per node (default: every alive node's, as the dashboard lists "
                        "them, looked up again every 30 s)")
    c.add_argument("--metrics-port", type=int, default=9108, help="port of autotune's own /metrics (0: off)")
    c.add_argument("--metrics-host", default="127.0.0.1", help="address to serve autotune's own metrics on")
    c.add_argument("--log", help="append one JSON line per decision to this file (default: stdout)")
    c.add_argument("--duration", type=float, help="stop after S seconds (default: run until interrupted)")
    c.add_argument("--state", metavar="FILE",
                   help="keep the policy's state in FILE after every decision, and resume it at start-up if the "
                        "same policy saved it for the same scenario within the last 15 minutes")
    c.add_argument("--prime-from", metavar="URL",
                   help="a Prometheus server that scrapes the cluster: start from the policy state its recent "
                        "history gives (instead of a cold start) unless --state resumed one")
    c.add_argument("--prime-s", type=float, default=1800.0,
                   help="seconds of history to prime from (default 1800: a burst guard's calm half hour)")
    o = c.add_argument_group("self-optimizing (champion and challenger)")
    o.add_argument("--optimize-every", type=_duration, metavar="DURATION",
                   help="record the traffic, and every DURATION (600, 90s, 15m, 2h) run `autotune optimize` on it "
                        "in a separate process; a challenger that wins by --promote-margin decides in shadow for "
                        "--shadow, then runs the cluster if no guard would have clipped it")
    o.add_argument("--optimize-dir", default="autotune-optimize",
                   help="where the traffic record and each optimizer run's report go (default ./autotune-optimize)")
    o.add_argument("--optimize-args", default="",
                   help="more `autotune optimize` options, as one string (e.g. \"--no-tune --seeds 1\")")
    o.add_argument("--shadow", type=_duration, default=600.0, metavar="DURATION",
                   help="how long a challenger decides beside the champion before it may act (default 600 s)")
    o.add_argument("--promote-margin", type=float, default=0.05,
                   help="the simulated saving a challenger must show over the champion (default 0.05)")
    o.add_argument("--watch", type=_duration, default=900.0, metavar="DURATION",
                   help="after a promotion, roll back if the SLO over this long falls below the champion's "
                        "(default 900 s)")
    k = c.add_argument_group("KubeRay")
    k.add_argument("--rayservice", metavar="NAMESPACE/NAME",
                   help="act by patching this RayService's serveConfigV2 instead of Serve's scale API")
    k.add_argument("--kubeconfig", help="kubeconfig file (default: ~/.kube/config, else in-cluster)")
    g = c.add_argument_group("guards (the simulator applies the same defaults, so a what-if predicts them)")
    for field, flag in GUARD_FLAGS.items():
        info = GuardConfig.model_fields[field]
        about = str(info.description).replace("%", "%%")  # argparse formats help with %
        if info.annotation is bool:
            g.add_argument(flag, dest=field, action="store_true", help=f"{about} (default off)")
        else:
            default = getattr(LIVE_GUARDS, field)
            g.add_argument(flag, dest=field, type=type(default), default=default, help=f"{about} (default {default:g})")
    c.set_defaults(func=control_main)

    lg = subparsers.add_parser("loadgen", help="replay a trace open-loop over HTTP",
                               description="Send each request at its arrival time; record latency and status.")
    lg.add_argument("--url", required=True, help="Serve HTTP endpoint, e.g. http://127.0.0.1:8000/")
    lg.add_argument("--scenario", default="live-demo", help="scenario whose workload (or --trace) to replay")
    lg.add_argument("--seed", type=int, default=0)
    lg.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    lg.add_argument("--out", help="write per-request latencies to this CSV")
    add_trace_options(lg)
    lg.set_defaults(func=loadgen_main)


def _controller_from_args(args: argparse.Namespace) -> tuple[Any, Any]:
    """Build (controller, closer) from the arguments; every input error surfaces here, at start-up."""
    from autotune.live.actuator import ServeActuator
    from autotune.live.controller import Controller, ControllerConfig, probe_policy
    from autotune.live.http import RequestRejected, RetryingClient, Unreachable
    from autotune.live.own_metrics import ControllerMetrics
    from autotune.live.serve_api import NotServeAPI, ServeAPI, scrape_all
    from autotune.live.serve_state import app_state
    from autotune.registry import make_policy
    from autotune.scenario import load_scenario

    sc = load_scenario(args.scenario)
    policy = make_policy(args.policy, sc)
    probe_policy(policy, sc)
    state_path, resumed = None, None
    if args.state:
        from autotune.live.saved_state import load_state

        state_path = Path(args.state)
        resumed, note = load_state(state_path, policy.name, sc.name, time.time())
        console.print(note)
    interval = args.interval if args.interval is not None else sc.control_interval_s
    _positive("--interval", interval)
    _positive("--sample-interval", args.sample_interval)
    guards = _guards(args)
    addr = urlparse(args.serve_address)
    if addr.scheme not in ("http", "https") or not addr.hostname:
        raise InputError("command line", "--serve-address", f"not an http(s) URL: {args.serve_address!r}")
    _positive("--prime-s", args.prime_s)
    if args.prime_from and urlparse(args.prime_from).scheme not in ("http", "https"):
        raise InputError("command line", "--prime-from", f"not an http(s) URL: {args.prime_from!r}")
    app = args.app or sc.name
    client = RetryingClient(timeout_s=min(5.0, interval), retries=2, backoff_s=min(0.5, interval / 10))
    api = ServeAPI(args.serve_address, client)
    state = None
    try:
        details = api.details()
    except NotServeAPI as e:
        raise InputError("command line", "--serve-address", str(e)) from None
    except (Unreachable, RequestRejected) as e:
        console.print(f"[yellow]dashboard not reachable at start-up ({e}); will keep retrying[/]")
    else:
        state = app_state(details, app)
        others = sorted((details.get("applications") or {}).keys())
        if state is None and others:
            raise InputError("command line", "--app", f"no application {app!r} on {args.serve_address}; deployed: "
                             f"{', '.join(others)}")
        if state is None:
            console.print(f"[yellow]no application is deployed on {args.serve_address} yet: waiting for "
                          f"{app!r}[/]")
        else:
            missing = [p.name for p in sc.pools if p.name not in state.deployments]
            if missing:
                raise InputError(args.scenario, "pools", f"no deployment named {', '.join(missing)} in app {app!r}")
            if not args.dry_run and not args.rayservice and not state.external_scaler_enabled:
                raise InputError("command line", "--app", f"{app!r} is not deployed with external_scaler_enabled: "
                                 "true (redeploy it, or use --dry-run)")
    endpoints = _endpoints(args, addr.hostname, client)
    sample_s = args.sample_interval or interval / 5
    if args.prime_from and resumed is None:
        resumed = _prime(args, policy, sc, app, state, interval, sample_s, client)
    metrics = ControllerMetrics()
    if args.metrics_port:
        try:
            metrics.serve(args.metrics_port, args.metrics_host)
        except OSError as e:
            raise InputError("command line", "--metrics-port", f"cannot listen on {args.metrics_port} ({e})") from None
    log_fh = open(args.log, "a") if args.log else sys.stdout  # noqa: SIM115 - closed by the closer

    def log(rec: dict[str, Any]) -> None:
        log_fh.write(json.dumps(rec) + "\n")
        log_fh.flush()
        if rec.get("event") == "decision":
            acts = "; ".join(rec.get("actions") or []) or "no change"
            console.print(f"t={rec['t']:.0f}s {rec.get('reason', '')[:100]} → {acts}"
                          + (f" [yellow]guards: {'; '.join(rec['guards'])}[/]" if rec.get("guards") else ""),
                          markup=True, highlight=False)

    cfg = ControllerConfig(app=app, interval_s=interval, sample_s=sample_s,
                           dry_run=args.dry_run,
                           guards=guards)
    actuator = _kuberay(args, app) if args.rayservice else ServeActuator(api, app)
    reopt, challenge = _self_optimizing(args, sc, policy)
    ctl = Controller(cfg, sc, policy, lambda: api.app(app), lambda: scrape_all(client, endpoints()), actuator, log,
                     metrics, state_path=state_path, resumed=resumed, reoptimizer=reopt, challenge=challenge)

    def close() -> None:
        client.close()
        if reopt is not None:
            reopt.stop()
        if log_fh is not sys.stdout:
            log_fh.close()

    return ctl, close


def _endpoints(args: argparse.Namespace, host: str, client: Any) -> Any:
    """The metrics endpoints to scrape: ``--prometheus-url`` as given, else every node the dashboard lists."""
    from autotune.live.http import RequestRejected, Unreachable
    from autotune.live.nodes import DiscoveredEndpoints, NoNodes

    if args.prometheus_url:
        fixed = list(args.prometheus_url)
        return lambda: fixed
    # Ray's default metrics export port, should the dashboard not list its nodes.
    found = DiscoveredEndpoints(args.serve_address, client, fallback=[f"http://{host}:8080/metrics"])
    try:
        urls = found.discover()
    except (Unreachable, RequestRejected, NoNodes) as e:
        console.print(f"[yellow]cannot list the cluster's nodes ({e}); scraping {found.fallback[0]} until it can[/]")
    else:
        console.print(f"metrics from {len(urls)} node(s): {', '.join(urls)}")
    return found


def _self_optimizing(args: argparse.Namespace, sc: Any, policy: Any) -> tuple[Any, Any]:
    """The optimizer runner and the champion/challenger gates for ``--optimize-every`` (both None without it)."""
    if args.optimize_every is None:
        return None, None
    import shlex

    from autotune.live.champion import ChallengeConfig, ChampionChallenger
    from autotune.live.reoptimize import Reoptimizer
    from autotune.registry import make_policy

    if not 0 <= args.promote_margin < 1:
        raise InputError("command line", "--promote-margin", f"must be in [0, 1) (got {args.promote_margin})")
    try:
        extra = shlex.split(args.optimize_args)
    except ValueError as e:
        raise InputError("command line", "--optimize-args", str(e)) from None
    folder = Path(args.optimize_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError("command line", "--optimize-dir", str(e)) from None
    cfg = ChallengeConfig(every_s=args.optimize_every, shadow_s=args.shadow, margin=args.promote_margin,
                          watch_s=args.watch)
    reopt = Reoptimizer(folder, args.scenario, args.policy, sc.slo.target, args.optimize_every, extra_args=extra)
    challenge = ChampionChallenger(cfg, policy, args.policy, lambda spec: make_policy(spec, sc),
                                   target=sc.slo.target)
    return reopt, challenge


def _guards(args: argparse.Namespace) -> GuardConfig:
    """The guard options as a GuardConfig; a bad one is a one-line error naming its flag."""
    try:
        return GuardConfig(**{field: getattr(args, field) for field in GUARD_FLAGS})
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError("command line", GUARD_FLAGS[str(err["loc"][0])], str(err["msg"]).lower()) from None


def _prime(args: argparse.Namespace, policy: Any, sc: Any, app: str, state: Any, interval: float,
           sample_s: float, client: Any) -> Any:
    """The state the policy would have now had it run over the last ``--prime-s`` (InputError if it cannot)."""
    from autotune.live.history import fetch_history, prime, replay_windows

    if state is None:
        raise InputError("command line", "--prime-from", f"needs the current fleet of app {app!r}, which the "
                         "dashboard did not give (start without --prime-from, or once the app is up)")
    end = time.time()
    series = fetch_history(client, args.prime_from, app, end, args.prime_s)
    primed = prime(policy, sc, app, state, replay_windows(series, end - args.prime_s, end, interval, sample_s),
                   interval)
    console.print(primed.note(args.prime_from))
    return primed.saved


def _kuberay(args: argparse.Namespace, app: str) -> Any:
    import yaml
    from kubernetes import config

    from autotune.live.kuberay import KubeRayActuator

    ns, sep, name = args.rayservice.partition("/")
    if not sep or not ns or not name:
        raise InputError("command line", "--rayservice", f"expected NAMESPACE/NAME, got {args.rayservice!r}")
    try:
        if args.kubeconfig:
            config.load_kube_config(config_file=args.kubeconfig)
        else:
            try:
                config.load_kube_config()
            except config.ConfigException:
                config.load_incluster_config()
    except (config.ConfigException, OSError, yaml.YAMLError) as e:
        raise InputError(args.kubeconfig or "kubeconfig", None, f"no usable Kubernetes config ({e})") from None
    return KubeRayActuator(ns, name, app)


def control_main(args: argparse.Namespace) -> int:
    ctl, close = _controller_from_args(args)
    why = {"now": ""}

    def on_term(signum: int, frame: Any) -> None:
        why["now"] = "SIGTERM"

    if threading.current_thread() is threading.main_thread():  # signal handlers only install there
        signal.signal(signal.SIGTERM, on_term)
    console.print(f"autotune control: app {ctl.cfg.app}, policy {ctl.policy.name}, every {ctl.cfg.interval_s:g}s"
                  + (" (dry run)" if ctl.cfg.dry_run else ""))
    try:
        ctl.run(args.duration, stop=lambda: bool(why["now"]))
    except KeyboardInterrupt:
        why["now"] = "interrupted"
    try:
        rec = ctl.stopped(why["now"] or f"--duration {args.duration:g} s reached")
    finally:
        close()
    console.print(_stop_line(ctl.cfg.app, rec))
    # Having never seen the app is a failure to control it, not a clean run.
    return 0 if rec["decisions"] else 1


def _stop_line(app: str, rec: dict[str, Any]) -> str:
    if not rec["decisions"]:
        return (f"stopped ({rec['why']}) after {rec['t']:.0f} s without controlling anything: application "
                f"{app!r} was never observed")
    applied = rec["applied"]
    last = ("nothing applied yet" if applied is None else "last applied " + ", ".join(
        f"{p}={n} (batch {applied['batch_size'].get(p, '-')})" for p, n in sorted(applied["replicas"].items())))
    return f"stopped ({rec['why']}) after {rec['decisions']} decisions on {app!r}; {last}"


def loadgen_main(args: argparse.Namespace) -> int:
    from autotune.live.loadgen import replay, summarize, write_csv
    from autotune.scenario import load_scenario
    from autotune.workload.arrivals import build_arrivals

    _positive("--timeout", args.timeout)
    if urlparse(args.url).scheme not in ("http", "https"):
        raise InputError("command line", "--url", f"not an http(s) URL: {args.url!r}")
    sc = load_scenario(args.scenario)
    arrivals = build_arrivals(sc, args.seed, trace_options(args))
    console.print(f"replaying {len(arrivals)} requests over {arrivals.duration_s:.0f}s "
                  f"({arrivals.mean_rate:.1f} req/s mean) to {args.url}")
    results = replay(args.url, arrivals, args.timeout)
    if args.out:
        write_csv(results, args.out)
    s = summarize(results, sc.slo.latency_ms)
    console.print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()))
    return 0 if s["ok"] else 1
