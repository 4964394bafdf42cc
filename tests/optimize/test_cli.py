"""``autotune optimize`` on the command line: bad input is one line and writes nothing; a run writes every output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autotune.cli import main
from autotune.live import observe
from autotune.workload.traces import RateTrace, read_trace
from tests.optimize.conftest import Answer, FakePrometheus, matrix, write_rate_trace


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["optimize", *args])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("extra,needle", [
    (["--trace", "no/such/trace.csv"], "trace file does not exist"),
    (["--target", "0"], "--target: must be in (0, 1]"),
    (["--target", "1.5"], "--target: must be in (0, 1]"),
    (["--prometheus", "http://localhost:9090"], "--app: required with --prometheus"),
    (["--prometheus", "localhost:9090", "--app", "app"], "--prometheus: not an http(s) URL"),
    (["--prometheus", "http://localhost:9090", "--app", "app", "--trace", "t.csv"],
     "--prometheus: give the traffic either as --trace or from --prometheus"),
    (["--app", "app"], "--app: only with --prometheus"),
    (["--step", "5"], "--step: only with --prometheus"),
    ([], "--trace: required"),
    (["--candidate", "nope"], "--candidate: nope: "),
    (["--candidate", "no/such.zip"], "--candidate: no/such.zip: no such policy zip"),
])
def test_bad_input_is_one_line_and_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  short_trace: Path, extra: list[str], needle: str) -> None:
    out = tmp_path / "out"
    args = ["--out", str(out), "--local", "--no-tune", "--fine-tune-steps", "0"]
    if "--trace" not in extra and "--prometheus" not in extra and extra:
        args += ["--trace", str(short_trace)]
    rc, err = _run(capsys, *args, *extra)
    assert rc == 2
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_trace_too_short_to_split_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = write_rate_trace(tmp_path / "short.csv", 12)
    out = tmp_path / "out"
    rc, err = _run(capsys, "--trace", str(trace), "--out", str(out), "--local", "--no-tune")
    assert rc == 2 and "too short to split" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_fine_tune_steps_below_one_update_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      short_trace: Path) -> None:
    out = tmp_path / "out"
    rc, err = _run(capsys, "--trace", str(short_trace), "--out", str(out), "--local", "--no-tune",
                   "--fine-tune-steps", "10")
    assert rc == 2 and "--fine-tune-steps" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_end_to_end_writes_every_output(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        short_trace: Path) -> None:
    out = tmp_path / "out"
    rc, err = _run(capsys, "--trace", str(short_trace), "--out", str(out), "--local", "--no-tune",
                   "--fine-tune-steps", "0", "--seeds", "1", "--ladder", "3", "--target", "0.95",
                   "--candidate", "static:2", "--candidate", "predictive")
    assert rc == 0, err
    rows = (out / "report.csv").read_text().splitlines()
    # A given candidate is evaluated on both parts under its own name; one already in the family is not repeated.
    assert sum(r.startswith("static:2,") for r in rows) == 2 and sum(r.startswith("predictive,") for r in rows) == 2
    for name in ("chosen.json", "report.csv", "report.md", "report.png"):
        assert (out / name).stat().st_size > 0
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["report_part"] is not None and chosen["choose_part"] is not None
    md = (out / "report.md").read_text()
    assert "## Report part" in md and f"**{chosen['chosen']}** (chosen)" in md


def served_app(fake_prometheus: Callable[[Answer], FakePrometheus], per_s: float = 20.0) -> FakePrometheus:
    """A Prometheus holding the app's router counter, scraped every 15 s up to the time asked, at about
    ``per_s`` requests a second (a sine around it, Poisson), with a process restart two thirds of the way."""

    def answer(query: str, t: float) -> tuple[int, object]:
        span = float(query.rsplit("[", 1)[1].rstrip("s]"))
        ts = t - 15.0 * np.arange(int(span // 15), -1, -1)
        rng = np.random.default_rng(0)
        inc = rng.poisson(15 * per_s * (1 + 0.5 * np.sin(np.linspace(0, 2 * np.pi, ts.size))))
        values = np.cumsum(inc) + 1000.0
        reset = 2 * ts.size // 3
        values[reset:] -= values[reset - 1]  # restarted: counts from 0 again
        labels = {"__name__": observe.ROUTER_REQUESTS, "application": "app", "deployment": "router"}
        return 200, matrix([(labels, list(zip(ts.tolist(), values.tolist(), strict=True)))])

    return fake_prometheus(answer)


@pytest.mark.parametrize("extra,needle", [
    (["--last", "120"], "prometheus http://127.0.0.1:"),  # ... app app (...): duration: ... too short to split
    (["--app", "other", "--no-answer"], "data.result: no ray_serve_num_router_requests_total"),
    (["--step", "0"], "--step: must be positive"),
    (["--last", "-1"], "--last: must be positive"),
])
def test_bad_prometheus_input_is_one_line_and_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                             fake_prometheus: Callable[[Answer], FakePrometheus],
                                                             extra: list[str], needle: str) -> None:
    if "--no-answer" in extra:
        extra.remove("--no-answer")
        prom = fake_prometheus(lambda query, t: (200, matrix([])))
    else:
        prom = served_app(fake_prometheus)
    out = tmp_path / "out"
    args = ["--out", str(out), "--local", "--no-tune", "--fine-tune-steps", "0", "--prometheus", prom.url]
    if "--app" not in extra:
        args += ["--app", "app"]
    rc, err = _run(capsys, *args, *extra)
    assert rc == 2
    assert needle in err and len(err.strip().splitlines()) == 1, err
    if extra == ["--last", "120"]:
        assert "duration: " in err and "too short to split" in err
    assert not out.exists()


def test_an_unreachable_prometheus_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               fake_prometheus: Callable[[Answer], FakePrometheus]) -> None:
    prom = fake_prometheus(lambda query, t: (200, matrix([])))
    url = prom.url
    prom.close()  # nothing listens there any more
    out = tmp_path / "out"
    rc, err = _run(capsys, "--out", str(out), "--local", "--no-tune", "--fine-tune-steps", "0",
                   "--prometheus", url, "--app", "app")
    assert rc == 2 and "--prometheus: cannot read the history" in err and url in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.slow
def test_the_traffic_from_prometheus_is_optimized_on_and_written(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        fake_prometheus: Callable[[Answer], FakePrometheus]) -> None:
    prom = served_app(fake_prometheus)
    out = tmp_path / "out"
    rc, err = _run(capsys, "--prometheus", prom.url, "--app", "app", "--last", "1500", "--out", str(out), "--local",
                   "--no-tune", "--fine-tune-steps", "0", "--seeds", "1", "--ladder", "2")
    assert rc == 0, err
    (query, end), = prom.queries
    chosen = json.loads((out / "chosen.json").read_text())
    traffic = chosen["traffic"]
    assert traffic["prometheus"] == prom.url and traffic["app"] == "app"
    assert traffic["metric"] == observe.ROUTER_REQUESTS and traffic["last_s"] == 1500
    assert traffic["end_unix_s"] == pytest.approx(end, abs=1e-3) and traffic["trace"] == str(out / "traffic.csv")
    assert chosen["split"]["trace"].startswith(f"prometheus {prom.url} app app")
    # The counter's increase over the span (the restart's new requests included), step by step.
    _, body = prom.answer(query, end)
    values = np.array([float(v) for _, v in body["data"]["result"][0]["values"]])  # type: ignore[index]
    steps = np.diff(values[-101:])
    steps[steps < 0] = values[-101:][1:][steps < 0]
    trace = read_trace(out / "traffic.csv")
    assert isinstance(trace, RateTrace) and trace.counts.sum() == traffic["requests"] == steps.sum()
    assert trace.width_s[0] == 10.0 and trace.counts.size == 150  # the default scenario's control interval
    assert (out / "report.md").read_text().count(f"prometheus {prom.url}") >= 1
    assert str(out / "traffic.csv") in err
