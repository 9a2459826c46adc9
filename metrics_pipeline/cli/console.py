"""What the command line prints while runs go: one line per warning, no stack traces.

Dagster's console logger prints every step failure with its stack trace; a person at a
terminal needs the failure's one line (the command prints those at the end) and the
warnings on the way (retries, pauses, rows left out). `--verbose` keeps Dagster's logger.
"""

from __future__ import annotations

import logging
import sys

from dagster import Field, InitLoggerContext, LoggerDefinition, logger


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        message = str(meta.get("orig_message", record.getMessage())).strip().splitlines()
        step = meta.get("step_key")
        where = f"{step}: " if step else ""
        return f"  {record.levelname.lower()}: {where}{message[0] if message else ''}"


# Dagster's note for each step skipped after a failure: the failure itself says more.
SKIPPED_STEP = "Dependencies for step"


def _from_user_code(record: logging.LogRecord) -> bool:
    """Lines the pipeline's code logged; Dagster's own events (failures with their stack
    traces among them) are left to the summary the command prints."""
    meta = getattr(record, "dagster_meta", None) or {}
    message = str(meta.get("orig_message", ""))
    return meta.get("dagster_event") is None and not message.startswith(SKIPPED_STEP)


@logger(
    Field({"log_level": Field(str, is_required=False, default_value="WARNING")}),
    description="One line per warning or error the pipeline logs; no stack traces.",
)
def one_line_logger(init_context: InitLoggerContext) -> logging.Logger:
    level = init_context.logger_config["log_level"]
    log = logging.Logger("metrics_pipeline.cli", level=level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler.addFilter(_from_user_code)
    log.addHandler(handler)
    return log


def cli_loggers(verbose: bool) -> dict[str, LoggerDefinition] | None:
    """The loggers for runs started from the command line (None: Dagster's console)."""
    return None if verbose else {"console": one_line_logger}
