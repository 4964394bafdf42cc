"""``autotune profile``: batch timings fitted into a model-catalog entry, the entry written safely."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from autotune.cli import main
from autotune.errors import InputError
from autotune.profile_model import fit, time_batches
from autotune.scenario import ModelProfile

FIXED_MS, PER_ITEM_MS = 4.0, 1.5


class SleepyModel:
    """A backend whose batch takes FIXED_MS + size x PER_ITEM_MS (the protocol of serve_app's backends)."""

    def predict(self, items: list[dict[str, Any]]) -> list[int]:
        time.sleep((FIXED_MS + len(items) * PER_ITEM_MS) / 1e3)
        return [0] * len(items)


class WrongCount:
    def predict(self, items: list[Any]) -> list[int]:
        return [0]


def test_the_fit_recovers_a_known_batch_time() -> None:
    f = fit(time_batches(SleepyModel().predict, {}, [1, 2, 4, 8, 16], repeats=7))
    # time.sleep overshoots by a fraction of a millisecond, more on a loaded machine: the fixed term takes it.
    assert f.per_item_ms == pytest.approx(PER_ITEM_MS, rel=0.15)
    assert FIXED_MS <= f.fixed_ms < FIXED_MS + 3.0
    assert 0 <= f.noise_sigma < 0.3


def test_outliers_of_the_machine_do_not_bend_the_line() -> None:
    timings = {s: [FIXED_MS + s * PER_ITEM_MS] * 9 + [500.0] for s in (1, 2, 4, 8)}  # one stall per size
    f = fit(timings)
    assert f.fixed_ms == pytest.approx(FIXED_MS) and f.per_item_ms == pytest.approx(PER_ITEM_MS)


def test_a_model_returning_the_wrong_number_of_outputs_is_refused() -> None:
    with pytest.raises(InputError, match="--backend: predict returned 1 outputs for 2 inputs"):
        time_batches(WrongCount().predict, {}, [1, 2], repeats=3)


def test_the_entry_is_added_to_a_catalog_and_a_taken_name_refused(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "models.yaml"
    catalog.write_text(Path("envs/catalog/models.yaml").read_text())
    before = catalog.read_text()
    argv = ["profile", "--backend", "tests.profile.test_profile_model:SleepyModel", "--name", "sleepy",
            "--batch-sizes", "1,4,8", "--repeats", "5", "--gpu", "L4", "--write", str(catalog)]
    assert main(argv) == 0
    text = catalog.read_text()
    assert text.startswith(before.rstrip("\n"))  # the other entries and their comments are kept
    entry = ModelProfile(**yaml.safe_load(text)["sleepy"])
    # The catalog holds per-item time on the reference GPU: measured on an L4, times the L4's speed (12882/6036).
    assert entry.per_item_ms == pytest.approx(PER_ITEM_MS * 12882 / 6036, rel=0.2)
    assert "autotune profile --backend tests.profile.test_profile_model:SleepyModel --gpu L4" in text
    capsys.readouterr()
    assert main(argv) == 2
    got = capsys.readouterr()
    assert "--name: 'sleepy' is already in" in " ".join((got.out + got.err).split())
    assert catalog.read_text() == text


@pytest.mark.parametrize("argv, message", [
    (["--backend", "no_such_module:Model"], "--backend: cannot import no_such_module:Model"),
    (["--backend", "nocolon"], "--backend: expected module:Class"),
    (["--batch-sizes", "4"], "--batch-sizes: at least two batch sizes"),
    (["--batch-sizes", "1,x"], "--batch-sizes: expected sizes like 1,2,4,8"),
    (["--gpu", "B300"], "--gpu: unknown instance type 'B300'"),
])
def test_bad_input_is_a_one_line_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["profile", "--backend", "tests.profile.test_profile_model:SleepyModel", "--name", "x", "--repeats", "3"]
    assert main([*base, *argv]) == 2
    got = capsys.readouterr()
    assert message in " ".join((got.out + got.err).split())
