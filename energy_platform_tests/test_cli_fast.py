"""`energy-platform --help` and mistakes answer at once: the parser imports no torch or sklearn.

Timing is in the README (measured with `time`); here the cause is tested: which modules the
parser loads, and the exit codes and messages of the real entry point.
"""

from __future__ import annotations

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
        (["dashboard", "--port", "eighty"], "invalid int value: 'eighty'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(args, message):
    proc = _run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.startswith("usage: energy-platform")


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
