"""Resource settings from environment variables, each default kept once on its field.

`EnvVar` fails when its variable is unset, so only the variables that are set (and not
empty) become keyword arguments; every other field keeps the default declared on the
resource. Strings and ints go through `EnvVar`, read when a run starts and shown in the UI
by name only, which keeps secrets and URLs out of the configuration. Dagster has no float
or bool `EnvVar`, so those (never secret) are read here, checked, and passed as values.

`resolve=True` passes every value itself instead: for checks that read the settings before
any run (the command line's preflight, e.g. that the warehouse answers). Resources built that
way are never handed to Dagster, which stores a job's resource configuration with each run.

A renamed variable keeps working under its old name while the new one is unset; the first
time a process reads it, one line says to use the new name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dagster import ConfigurableResource, EnvVar

from metrics_pipeline.text import without_password

log = logging.getLogger(__name__)
_announced: set[str] = set()  # old variable names this process has said are deprecated


class SettingError(ValueError):
    """A variable's value does not fit its field: one line naming both."""


def _deprecated(old: str, new: str, new_is_set: bool) -> None:
    if old in _announced:
        return
    _announced.add(old)
    if new_is_set:
        log.warning(f"{old} is deprecated and ignored, since {new} is set; unset {old}")
    else:
        log.warning(f"{old} is deprecated; use {new}, which means the same")


def _source(variable: str, environ: Mapping[str, str], renamed: Mapping[str, str]) -> str:
    """The variable to read for `variable`: itself, or an old name of it that is set."""
    for old, new in renamed.items():
        if new == variable and environ.get(old):
            _deprecated(old, new, bool(environ.get(variable)))
            if not environ.get(variable):
                return old
    return variable


# What is wrong with a variable's value, naming the value and what is accepted; None when
# the value is accepted.
ValueCheck = Callable[[str], str | None]


def check_values(checks: Mapping[str, ValueCheck], environ: Mapping[str, str]) -> list[str]:
    """`VARIABLE: problem` for each variable of `checks` that is set (not empty) in `environ`
    to a value its check refuses."""
    problems = []
    for variable, check in checks.items():
        value = environ.get(variable)
        problem = check(value) if value else None
        if problem:
            problems.append(f"{variable}: {problem}")
    return problems


def one_of(*choices: str) -> ValueCheck:
    """A word from `choices`, in any case."""

    def check(value: str) -> str | None:
        if value.strip().lower() in choices:
            return None
        return f"{value!r} is not {' or '.join(choices)}; accepted: {', '.join(choices)}"

    return check


def whole_number(minimum: int) -> ValueCheck:
    def check(value: str) -> str | None:
        try:
            if int(value) >= minimum:
                return None
        except ValueError:
            pass
        return f"{value!r} is not a whole number of {minimum} or more"

    return check


def number(minimum: float) -> ValueCheck:
    def check(value: str) -> str | None:
        try:
            if float(value) >= minimum:  # NaN compares False, so it is refused
                return None
        except ValueError:
            pass
        return f"{value!r} is not a number of {minimum:g} or more"

    return check


def http_url(value: str) -> str | None:
    """An http:// or https:// URL with a host."""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        ok = False
    if ok:
        return None
    # Neither a password in it nor a query (which may carry a key) is repeated.
    shown = without_password(value.split("?", 1)[0])
    return f"{shown!r} is not an http(s) URL; accepted: https://<host>[:<port>][/<path>]"


def env_settings(
    resource_type: type[ConfigurableResource],
    variables: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    resolve: bool = False,
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `resource_type` from `variables` (field -> variable name), read
    from `environ` (default: this process's environment); `renamed` maps old variable names
    to the current ones of `variables`."""
    environ = os.environ if environ is None else environ
    fields = resource_type.model_fields
    settings: dict[str, Any] = {}
    for field, name in variables.items():
        variable = _source(name, environ, renamed or {})
        value = environ.get(variable)
        if not value:
            continue  # the field's own default
        kind = fields[field].annotation
        if kind in (bool, bool | None):
            kind = bool  # unset is the field's own default (None where it has meaning)
        if kind is float:
            settings[field] = float(_checked(resource_type, field, variable, value, float))
        elif kind is bool:
            settings[field] = _checked(resource_type, field, variable, value, bool) == "true"
        elif kind is int:
            number = int(_checked(resource_type, field, variable, value, int))
            settings[field] = number if resolve else EnvVar.int(variable)
        else:
            settings[field] = value if resolve else EnvVar(variable)
    return settings


def _checked(
    resource_type: type[ConfigurableResource], field: str, variable: str, value: str, kind: type
) -> str:
    """`value` when it reads as `kind` (a bool is `true` or `false`); else a SettingError."""
    text = value.strip().lower() if kind is bool else value
    try:
        if kind is bool and text not in ("true", "false"):
            raise ValueError(text)
        kind(text)
    except ValueError:
        expected = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise SettingError(
            f"{variable} ({resource_type.__name__}.{field}): {value!r} is not {expected}"
        ) from None
    return text


def file_path(value: str) -> str | None:
    """The path of a file (a missing one is its reader's to report, naming the file)."""
    path = Path(value).expanduser()
    if path.exists() and not path.is_file():
        return f"{value!r} is a folder, not a file; accepted: the path of a file"
    return None


def folder_path(value: str) -> str | None:
    """The path of a folder, or of one to create."""
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return f"{value!r} is a file, not a folder; accepted: a folder (created if missing)"
    return None
