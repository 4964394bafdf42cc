"""``autotune whatif`` and ``autotune scenarios`` end to end: CSV columns, oracle bound, bad input."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from autotune.cli import main
from autotune.scenario import load_scenario
from autotune.whatif import run_whatif
from autotune.workload.arrivals import TraceOptions

COLUMNS = ["policy", "requests", "slo_attainment", "p50_ms", "p95_ms", "p99_ms", "cost_usd",
           "usd_per_million_requests", "gpu_hours", "scale_actions", "dropped", "rejected", "timed_out", "late"]


def test_whatif_writes_exact_csv_and_plot(tmp_path, capsys):
    out, png = tmp_path / "r.csv", tmp_path / "r.png"
    rc = main(["whatif", "--scenario", "default", "--duration", "600", "--policy", "static:3",
               "--policy", "ray-default", "--policy", "hpa", "--out", str(out), "--plot", str(png)])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0].keys()) == COLUMNS
    assert [r["policy"] for r in rows] == ["static:3", "ray-default", "hpa", "oracle-startup", "oracle"]
    assert len({r["requests"] for r in rows}) == 1  # same arrivals for every policy
    for r in rows:
        assert 0.0 <= float(r["slo_attainment"]) <= 1.0
        assert float(r["cost_usd"]) > 0
    assert png.stat().st_size > 10_000
    assert "oracle" in capsys.readouterr().out


def test_insure_adds_or_leaves_out_the_insured_oracle(tmp_path):
    out = tmp_path / "r.csv"
    assert main(["whatif", "--duration", "300", "--policy", "predictive+crowd:3", "--insure", "0",
                 "--out", str(out)]) == 0
    assert [r["policy"] for r in csv.DictReader(out.open())] == ["predictive+crowd:3", "oracle-startup", "oracle"]
    assert main(["whatif", "--duration", "300", "--policy", "predictive", "--insure", "2", "--out", str(out)]) == 0
    rows = {r["policy"]: r for r in csv.DictReader(out.open())}
    assert list(rows) == ["predictive", "oracle-startup", "oracle", "oracle+crowd:2"]
    assert float(rows["oracle+crowd:2"]["cost_usd"]) > float(rows["oracle"]["cost_usd"])


def test_whatif_without_policies_compares_rays_rules_with_autotunes(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["whatif", "--out", str(out)]) == 0  # the README's first table (make demo): the whole hour
    rows = {r["policy"]: r for r in csv.DictReader(out.open())}
    assert list(rows) == ["static", "ray-default", "hpa", "predictive", "predictive+crowd:3", "rl:default",
                          "oracle-startup", "oracle", "oracle+crowd:3"]
    # the first answer a user gets: autotune's rule keeps the SLO for less than Ray's
    assert float(rows["predictive"]["cost_usd"]) < 0.6 * float(rows["ray-default"]["cost_usd"])
    assert float(rows["predictive"]["slo_attainment"]) >= 0.99
    # and what insuring it against a surprise crowd costs: more than the rule, still less than Ray's
    insured = rows["predictive+crowd:3"]
    assert float(insured["slo_attainment"]) >= 0.99
    assert float(rows["predictive"]["cost_usd"]) < float(insured["cost_usd"]) < float(rows["ray-default"]["cost_usd"])
    # foresight that pays the start-up delays keeps the SLO too, for more than the instant bound, less than the rule
    early, bound = rows["oracle-startup"], rows["oracle"]
    assert float(early["slo_attainment"]) >= 0.99
    assert float(bound["cost_usd"]) < float(early["cost_usd"]) < float(rows["predictive"]["cost_usd"])
    # the line under the table: the start-up share and the cheapest policy that kept the target, from these rows
    # the oracle insured as the floor is: most of the floored rule's price over the oracle is the insurance
    cover = float(rows["oracle+crowd:3"]["cost_usd"])
    assert 2 * float(bound["cost_usd"]) < cover <= float(insured["cost_usd"]) < 1.05 * cover
    kept = {k: float(r["cost_usd"]) for k, r in rows.items()
            if not k.startswith("oracle") and float(r["slo_attainment"]) >= 0.99}
    best = min(kept, key=kept.__getitem__)
    said = capsys.readouterr().out
    assert f"start-up delay {float(early['cost_usd']) / float(bound['cost_usd']) - 1:+.0%}" in said
    assert f"cheapest at the 99.0% target: {best} ${kept[best]:,.2f}" in said and best == "predictive"
    price = cover / float(bound["cost_usd"])
    assert f"oracle+crowd:3 ${cover:,.2f} (insured for a 3x surge: {price:.2f}x oracle)" in said
    assert f"{kept[best] / cover:.2f}x oracle+crowd:3)" in said


@pytest.mark.parametrize("scenario,rate", [("default", 20.0), ("default", 300.0), ("default", 900.0),
                                           ("mixed", 300.0)])
def test_oracle_costs_no_more_than_any_policy_that_meets_the_slo(scenario, rate):
    sc = load_scenario(scenario)
    fleets = ["static:1", "static:2", "static:4", "static:8"]
    res = run_whatif(sc, [*fleets, "ray-default", "hpa"], seed=11,
                     options=TraceOptions(duration_s=900.0, mean_rate=rate))
    rows = res.rows()
    oracle = rows[-1]
    assert oracle["policy"] == "oracle"
    meeting = [r for r in rows[:-1] if r["slo_attainment"] >= sc.slo.target]
    assert meeting, "no policy met the SLO: the comparison would be empty"
    for r in meeting:
        assert oracle["cost_usd"] <= r["cost_usd"] * 1.0001, (r["policy"], r["cost_usd"], oracle["cost_usd"])


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autotune.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)


BAD_TRACES = {
    "missing.csv": ("foo,bar\n1,2\n", "TIMESTAMP", "missing column"),
    "negative.csv": ("start_s,requests\n0,5\n60,-1\n", "requests (line 3)", "negative count"),
    "unsorted.csv": ("arrival_s\n0\n2\n1\n", "arrival_s (line 4)", "unsorted"),
    "empty.csv": ("", "empty.csv", "empty file"),
    "text.csv": ("TIMESTAMP\nyesterday\n", "TIMESTAMP (line 2)", "not a datetime"),
}


@pytest.mark.parametrize("name", sorted(BAD_TRACES))
def test_bad_trace_one_line_exit_2_nothing_written(tmp_path, name):
    text, field, problem = BAD_TRACES[name]
    (tmp_path / name).write_text(text)
    proc = _run(tmp_path, "whatif", "--trace", name, "--out", "out.csv")
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert name in err and field in err and problem in err, err
    assert not (tmp_path / "out.csv").exists()


BAD_SCENARIOS = {
    "unknown instance type": ("instance: L4", "instance: B200", "pools.0.instance", "unknown instance type"),
    "negative SLO": ("latency_ms: 100", "latency_ms: -5", "slo.latency_ms", "greater than 0"),
    "batch not allowed": ("batch_size: 8", "batch_size: 3", "pools.0", "not in batch_sizes"),
    "typo field": ("control_interval_s: 10", "control_intervall_s: 10", "control_intervall_s", "Extra inputs"),
    "broken yaml": ("pools:", "pools: [", "line", "not valid YAML"),
    "negative provisioning": ("instance: L4", "instance: L4\n    provision_s: -1", "pools.0.provision_s",
                              "greater than or equal to 0"),
    "training rates reversed": ("workload:", "training: {mean_rate_range: [100, 10]}\nworkload:", "training",
                                "0 < low <= high"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenario_names_file_and_field(tmp_path, case):
    old, new, field, problem = BAD_SCENARIOS[case]
    text = Path("envs/default.yaml").read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    proc = _run(tmp_path, "whatif", "--scenario", str(path), "--out", "out.csv")
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "bad.yaml" in err and field in err and problem in err, err
    assert not (tmp_path / "out.csv").exists()


def test_unknown_policy_and_scenario(tmp_path):
    proc = _run(tmp_path, "whatif", "--policy", "magic", "--duration", "60")
    assert proc.returncode == 2 and "--policy" in proc.stderr and "magic" in proc.stderr
    proc = _run(tmp_path, "whatif", "--scenario", "nowhere")
    assert proc.returncode == 2 and "no such scenario" in proc.stderr
    for bad in ("-1", "0.5", "nan", "1000"):
        proc = _run(tmp_path, "whatif", "--insure", bad, "--duration", "60", "--out", "out.csv")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "--insure: must be 0 (none) or a surge K" in proc.stderr and not (tmp_path / "out.csv").exists()


def test_scenarios_command_lists_every_scenario(capsys):
    assert main(["scenarios"]) == 0
    text = capsys.readouterr().out
    for name in ("default", "mixed", "mixed-large", "azure-conv", "azure-code", "nasa", "live-demo"):
        assert name in text


def test_records_per_request_and_per_window(tmp_path):
    rc = main(["whatif", "--scenario", "mixed", "--duration", "300", "--policy", "ray-default",
               "--records", str(tmp_path)])
    assert rc == 0
    reqs = list(csv.DictReader((tmp_path / "ray-default.requests.csv").open()))
    assert list(reqs[0]) == ["arrival_s", "start_s", "finish_s", "pool", "replica", "dropped", "timed_out"]
    done = [r for r in reqs if r["dropped"] == "False"]
    assert {r["pool"] for r in done} <= {"l4-spot", "l4", "t4", "a100"} and len({r["replica"] for r in done}) >= 2
    assert all(float(r["arrival_s"]) <= float(r["start_s"]) <= float(r["finish_s"]) for r in done)
    wins = list(csv.DictReader((tmp_path / "ray-default.windows.csv").open()))
    assert len(wins) == 33 and "l4-spot_running" in wins[0] and "decision" in wins[0]
    assert (tmp_path / "oracle.windows.csv").exists()


def test_instance_override_answers_what_if_on_another_gpu(tmp_path):
    rows = {}
    for gpu in ("T4", "H100"):
        out = tmp_path / f"{gpu}.csv"
        assert main(["whatif", "--duration", "600", "--policy", "static:2", "--instance", gpu, "--out", str(out)]) == 0
        rows[gpu] = {r["policy"]: r for r in csv.DictReader(out.open())}
    # Same fleet: the H100 costs more per hour and serves faster.
    assert float(rows["H100"]["static:2"]["cost_usd"]) > 10 * float(rows["T4"]["static:2"]["cost_usd"])
    assert float(rows["H100"]["static:2"]["p50_ms"]) < float(rows["T4"]["static:2"]["p50_ms"])
