"""The runs' console log: Dagster's coloured one, with an error event told in one line.

A failed step printed its error three times with stack traces (~100 lines) above the CLI's own
one-line reason. The full error stays in the run's event log (Dagster UI), and the CLI prints a
bug's traceback itself; the console keeps the event and the error's last line."""

from __future__ import annotations

import logging

import dagster as dg

STACK_TRACE = "Stack Trace:"


class _ErrorsInOneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno >= logging.ERROR and "\n" in message:
            lines = message.split("\n")
            end = next((i for i, line in enumerate(lines) if line.strip() == STACK_TRACE), len(lines))
            said = [line.strip() for line in lines[1:end] if line.strip()]
            record.msg, record.args = lines[0] + (f" {said[-1]}" if said else "") + " (full error: the run in the Dagster UI)", ()
        return True


@dg.logger(
    config_schema=dg.colored_console_logger.config_schema,
    description="Dagster's coloured console log; error events in one line (the event log keeps their stack trace).",
)
def console(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = dg.colored_console_logger.logger_fn(init_context)
    logger.addFilter(_ErrorsInOneLine())
    return logger
