"""`energy-platform --help` and mistakes answer at once: the parser imports no torch or sklearn.

Timing is in the README (measured with `time`); here the cause is tested: which modules the
parser loads, and the exit codes and messages of the real entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = Path(sys.executable).with_name("energy-platform")
HEAVY = ("torch", "sklearn", "mlflow", "dagster", "evidently", "streamlit")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENTRY), *args], check=False, capture_output=True, text=True, timeout=120)


def test_parser_loads_no_heavy_library():
    code = ("import sys; from energy_platform.cli import build_parser; "
            "build_parser().parse_args(['backtest', '--models', 'naive_w']); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["backtest", "--help"], ["ui", "--help"]])
def test_help_exits_0(args):
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: energy-platform")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bakctest"], "invalid choice: 'bakctest'"),
        ([], "the following arguments are required: command"),
        (["backtest", "--test-start", "2024-13-01"], "not a date (want YYYY-MM-DD): '2024-13-01'"),
        (["replay", "--start", "2024-01-01"], "the following arguments are required: --days"),
        (["dashboard", "--port", "eighty"], "a port is a whole number 1-65535, got 'eighty'"),
        (["dashboard", "--port", "-1"], "a port is a whole number 1-65535, got '-1'"),  # a bind() traceback (session 19)
        (["ui", "--port", "abc"], "a port is a whole number 1-65535, got 'abc'"),  # dagster dev failed, exit 0
        # --train-config is checked against forecaster_model's config before any work (a bad one failed the
        # training run minutes in, with a traceback)
        (["replay", "--start", "2020-01-01", "--days", "2", "--train-config", '{"epochs": 3}'],
         "--train-config: unknown key(s) epochs; forecaster_model's config has backtest_weeks"),
        (["demo", "--train-config", '{"n_members": 0}'], "--train-config: n_members: Input should be greater than or equal to 1"),
        (["demo", "--train-config", "[1]"], "--train-config: want a JSON object of forecaster_model's config, got '[1]'"),
        (["demo", "--train-config", '{"recalibrate_every": 0}'], "recalibrate_every: Input should be greater than or equal to 1"),
        (["demo", "--train-config", '{"backtest_weeks": 0}'], "backtest_weeks: Input should be greater than or equal to 1"),
        # helper U (session 21): these failed the training run with a traceback after ingestion and features
        (["demo", "--train-config", '{"learning_rate": NaN}'], "learning_rate: Input should be a finite number"),
        (["demo", "--train-config", '{"learning_rate": -0.001}'], "learning_rate: Input should be greater than 0"),
        (["demo", "--train-config", '{"price_floor": NaN}'], "price_floor: Input should be a finite number"),
        (["demo", "--train-config", '{"lear_weight": -1}'], "lear_weight: Input should be greater than or equal to 0"),
        (["demo", "--train-config", '{"window_days": 0}'], "window_days: Input should be greater than or equal to 1"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(args, message):
    proc = _run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.startswith("usage: energy-platform")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-12-30", "--days", "5"], "the embedded data ends 2024-12-31: the last replayed morning can be 2025-01-01"),
        (["--start", "2015-02-01", "--days", "2"], "replay starts on 2015-07-01 at the earliest"),
        (["--start", "2020-01-01", "--days", "0"], "--days must be at least 1, got 0"),
    ],
)
def test_a_replay_the_data_cannot_cover_is_refused_before_any_heavy_import(tmp_path, args, message):
    """The range is checked first (it took 12 s behind Dagster's and torch's imports): exit 2, the
    limit named, no heavy library loaded and no home created."""
    home = tmp_path / "home"
    code = ("import sys; from energy_platform.cli import main; "
            f"rc = main(['replay', *{args!r}]); "
            f"print(rc, sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "ENERGY_PLATFORM_HOME": str(home)})
    assert proc.stdout.strip() == "2 []", proc.stdout
    assert message in proc.stderr and not home.exists()


def test_declared_model_names_are_the_registry():
    from energy_platform.backtest_args import MODEL_NAMES
    from energy_platform.forecasting.models import MODELS

    assert tuple(MODELS) == MODEL_NAMES


@pytest.mark.parametrize(("target", "default"), [("ui", "3000"), ("dashboard", "8501")])
def test_make_targets_take_a_port(target, default):
    root = Path(__file__).resolve().parent.parent
    venv = ["VENV=" + str(Path(sys.executable).parent.parent)]
    chosen = subprocess.run(["make", "-n", "-C", str(root), target, "PORT=3001", *venv],
                            capture_output=True, text=True, check=True).stdout
    assert f"energy-platform {target} --port 3001" in chosen
    plain = subprocess.run(["make", "-n", "-C", str(root), target, *venv], capture_output=True, text=True,
                           check=True).stdout
    assert f"energy-platform {target} --port {default}" in plain


def test_an_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    """Helper L (session 20): Ctrl-C or SIGTERM during a demo printed a 26-41-line traceback
    (KeyboardInterrupt, Dagster's DagsterExecutionInterruptedError, DuckDB's 'Query interrupted')."""
    import dagster as dg

    from energy_platform import cli

    def interrupted(kind):
        def run(args):
            if kind == "duckdb":
                try:
                    raise KeyboardInterrupt
                except KeyboardInterrupt:
                    raise RuntimeError("Query interrupted") from None
            raise kind()
        return run

    for kind in (KeyboardInterrupt, dg.DagsterExecutionInterruptedError, "duckdb"):
        monkeypatch.setattr(cli, "_demo", interrupted(kind))
        assert cli.main(["demo"]) == 130
        err = capsys.readouterr().err
        assert err == "energy-platform demo: interrupted; nothing is half-written: run the command again\n", err
    monkeypatch.setattr(cli, "_demo", interrupted(ValueError))
    with pytest.raises(ValueError):  # a bug keeps its traceback
        cli.main(["demo"])


def test_train_config_values_are_passed_on_as_validated_so_the_run_config_takes_them():
    """Helper S (session 21): {"max_epochs": "3"} passed the parser (pydantic reads "3" as 3) and
    then failed Dagster's run config after ingestion and features, with a traceback."""
    import dagster as dg

    from energy_platform.cli import _training_overrides
    from energy_platform.defs import TRAIN_JOB, build_definitions
    from energy_platform.settings import from_env

    value = _training_overrides('{"max_epochs": "3", "n_members": 1.0, "learning_rate": 1, "blend_naive": 1}')
    assert value == {"max_epochs": 3, "n_members": 1, "learning_rate": 1.0, "blend_naive": True}
    job = build_definitions(from_env({})).resolve_job_def(TRAIN_JOB)
    dg.validate_run_config(job, {"ops": {"forecaster_model": {"config": value}}})  # raises if Dagster refuses it
