"""Errors an operator acts on, as opposed to bugs.

A `StateError` says in one line which file of the home is unusable and what to do about it;
the CLI prints it without a traceback and exits non-zero.
"""

from __future__ import annotations


class OperatorError(RuntimeError):
    """An error an operator acts on: the CLI prints its message without a traceback, exit 2."""


class SettingError(OperatorError, ValueError):
    """An ENERGY_PLATFORM_* setting that cannot be read; the message names the variable and what it takes."""


class StateError(OperatorError):
    """A state file of ENERGY_PLATFORM_HOME is unusable; the message names it and the remedy."""


class RunBlockedError(OperatorError):
    """A run stopped by a blocking data-quality check; the message names the checks and what
    they found (Dagster's own error says only how many failed)."""


def one_line(exc: BaseException | str) -> str:
    """Library errors span lines (DuckDB, SQLAlchemy); an operator's message must not."""
    return " ".join(str(exc).split())
