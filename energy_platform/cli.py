"""The `energy-platform` command: demo, backtest and the platform's other entry points."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energy-platform", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole platform on the active source")
    demo.add_argument("--train-config", type=_training_overrides, default=None, metavar="JSON",
                      help='overrides of forecaster_model\'s config, e.g. \'{"n_members": 1}\' on a slow machine')
    demo.set_defaults(func=_demo)

    ui = sub.add_parser("ui", help="Dagster UI on 127.0.0.1 with the project's instance")
    ui.add_argument("--port", type=_port, default=3000)
    ui.set_defaults(func=_ui)

    dashboard = sub.add_parser("dashboard", help="Streamlit dashboard over analytics.duckdb (127.0.0.1)")
    dashboard.add_argument("--port", type=_port, default=8501)
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.set_defaults(func=_dashboard)

    replay = sub.add_parser("replay", help="replay the embedded data day by day as if it were live")
    replay.add_argument("--start", required=True, type=date.fromisoformat, help="first replayed morning, YYYY-MM-DD")
    replay.add_argument("--days", required=True, type=int, help="number of replayed days")
    replay.add_argument("--train-config", type=_training_overrides, default=None, metavar="JSON",
                        help='overrides of forecaster_model\'s config, e.g. \'{"max_epochs": 5}\' for a quick look')
    replay.set_defaults(func=_replay)

    rollback = sub.add_parser("rollback", help="make the previous champion the champion again (one step)")
    rollback.set_defaults(func=_rollback)

    from energy_platform.backtest_args import add_backtest_parser  # no torch until it runs

    add_backtest_parser(sub)

    return parser


def _training_overrides(text: str) -> dict:
    """--train-config, checked before any work: a JSON object of forecaster_model's config keys
    with valid values (a bad one failed the training run minutes in, with a traceback)."""
    import pydantic

    from energy_platform.defs.lifecycle import TrainingConfig
    from energy_platform.errors import one_line

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"want a JSON object of forecaster_model's config, got {text!r}")
    known = sorted(TrainingConfig.model_fields)
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown key(s) {', '.join(unknown)}; forecaster_model's config has {', '.join(known)}")
    try:
        config = TrainingConfig(**value)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise argparse.ArgumentTypeError(one_line(problems)) from None
    # the values as validated: pydantic takes "3" or 3.0 for an integer, Dagster's run config does
    # not (helper S, session 21: such a value passed here and failed the training run minutes in)
    return config.model_dump(exclude_unset=True)


def _check_home() -> None:
    from energy_platform.settings import get_settings
    from energy_platform.state import check_home

    check_home(get_settings())


def _demo(args: argparse.Namespace) -> int:
    _check_home()
    from energy_platform.demo import run_demo

    return run_demo(training=args.train_config)


def _dashboard(args: argparse.Namespace) -> int:
    from energy_platform.dashboard import run_dashboard

    run_dashboard(port=args.port, host=args.host)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from energy_platform.replay_window import ReplayError, check_window
    from energy_platform.settings import from_env

    try:  # a range it cannot replay, answered at once: nothing imported or created before
        check_window(args.start, args.days, from_env().source)
    except ReplayError as exc:
        print(f"energy-platform replay: {exc}", file=sys.stderr)
        return 2
    _check_home()
    from energy_platform.replay import run_replay

    try:
        run_replay(args.start, args.days, training=args.train_config)
    except ReplayError as exc:
        print(f"energy-platform replay: {exc}", file=sys.stderr)
        return 2
    return 0


def _port(text: str) -> int:
    """A TCP port, 1-65535: `ui --port abc` ran dagster dev for 20 s, failed and exited 0."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number 1-65535, got {text!r}")
    return port


def _rollback(args: argparse.Namespace) -> int:
    _check_home()
    from energy_platform.lifecycle_commands import rollback_champion

    try:
        new, old = rollback_champion()
    except RuntimeError as exc:
        print(f"energy-platform rollback: {exc}", file=sys.stderr)
        return 2
    print(f"champion is now v{new} (was v{old}, which is now 'previous')")
    return 0


def _reap_dead_runs() -> None:
    import dagster as dg

    from energy_platform.orchestration import reap_dead_in_process_runs

    with dg.DagsterInstance.get() as instance:
        for run_id in reap_dead_in_process_runs(instance):
            print(f"run {run_id}: its lease expired (killed?): failed, its pool slot freed", file=sys.stderr)


def _ui(args: argparse.Namespace) -> int:
    import os

    from energy_platform.settings import PROJECT_ROOT, get_settings

    settings = get_settings()  # creates the home and DAGSTER_HOME with the project's dagster.yaml
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    _reap_dead_runs()  # before the daemon's first runs (its sensor then keeps doing it)
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    os.execv(dagster, [dagster, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", workspace])


def _quiet_libraries() -> None:
    """MLflow's progress bars and advice are noise in a command-line run; warnings stay visible."""
    import logging
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _operator_error(exc: BaseException) -> str | None:
    """The message of the operator's error behind `exc`, if any (Dagster wraps a failing asset's or
    resource's error in its own): a setting, state or blocked run, refused input data (a source's
    answer or file, a history too short for the model) and an asset's own `Failure`, which names
    the problem. Anything else is a bug and keeps its traceback."""
    import dagster as dg

    from energy_platform.errors import OperatorError, one_line
    from energy_platform.forecasting.errors import ForecastInputError
    from energy_platform.sources.base import SourceError

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, dg.Failure):
            return one_line(exc.description or str(exc))
        if isinstance(exc, (OperatorError, SourceError, ForecastInputError)):
            return one_line(exc)
        seen.add(id(exc))
        # the cause; the context only when not suppressed (a bug raised while handling an input error
        # must keep its traceback, not print the handled error)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def _interrupted(exc: BaseException | None) -> bool:
    """Ctrl-C or SIGTERM anywhere in the chain: Python's, Dagster's (raised in a step), DuckDB's."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "DagsterExecutionInterruptedError":
            return True
        if isinstance(exc, RuntimeError) and "Query interrupted" in str(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BaseException as exc:
        if _interrupted(exc):
            # Ctrl-C or SIGTERM: every write is one transaction, so nothing is half-written (helper L:
            # a 30-line traceback said otherwise); the run is marked failed, the next command reaps it
            if args.command == "rollback":  # several writes (aliases, tag, record): the rerun completes them
                print("energy-platform rollback: interrupted; run it again: it completes this rollback (it does "
                      "not roll back a second time)", file=sys.stderr)
            else:
                print(f"energy-platform {args.command}: interrupted; nothing is half-written: run the command again",
                      file=sys.stderr)
            return 130
        if not isinstance(exc, Exception):
            raise
        known = _operator_error(exc)
        if known is None:
            raise
        print(f"energy-platform: {known}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
