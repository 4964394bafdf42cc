"""``autotune optimize`` on the command line: bad input is one line and writes nothing; a run writes every output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotune.cli import main
from tests.optimize.conftest import write_rate_trace


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["optimize", *args])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("extra,needle", [
    (["--trace", "no/such/trace.csv"], "trace file does not exist"),
    (["--target", "0"], "--target: must be in (0, 1]"),
    (["--target", "1.5"], "--target: must be in (0, 1]"),
    (["--prometheus", "http://localhost:9090", "--app", "app"], "--prometheus: reading the traffic from "
                                                                "Prometheus is not yet supported"),
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
