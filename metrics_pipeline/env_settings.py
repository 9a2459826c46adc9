"""Resource settings from environment variables, each default kept once on its field.

`EnvVar` fails when its variable is unset, so only the variables that are set (and not
empty) become keyword arguments; every other field keeps the default declared on the
resource. Strings and ints go through `EnvVar`, read when a run starts and shown in the UI
by name only, which keeps secrets and URLs out of the configuration. Dagster has no float
or bool `EnvVar`, so those (never secret) are read here, checked, and passed as values.

`resolve=True` passes every value itself instead: for a process that runs the pipeline in
its own memory and never serves these definitions to the UI (the command line), and that
must read its settings before any run, e.g. to check the warehouse answers.

A renamed variable keeps working under its old name while the new one is unset; the first
time a process reads it, one line says to use the new name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableResource, EnvVar

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
