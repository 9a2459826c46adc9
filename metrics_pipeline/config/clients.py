"""The clients file: who the pipeline collects for and how their conversions are counted.

Read from `METRICS_CLIENTS_FILE`, else `clients.yaml` in the working directory, else the
bundled demo clients. Every problem is reported with the client and the field it is in.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from metrics_pipeline.domain.anomalies import (
    DEFAULT_BAND_WIDTH,
    DEFAULT_MIN_CONVERSIONS,
    DEFAULT_MIN_FACTOR,
    AnomalyRule,
)
from metrics_pipeline.domain.conversions import ConversionMapping, MetricRule, default_mapping
from metrics_pipeline.domain.metrics import METRICS, MetricRegistry
from metrics_pipeline.domain.money import is_known_currency
from metrics_pipeline.domain.pacing import (
    DEFAULT_SPEND_BAND_PCT,
    DEFAULT_TARGET_FLOOR_PCT,
    PaceRule,
)
from metrics_pipeline.domain.tracking import (
    DEFAULT_DROP_PCT,
    DEFAULT_MIN_EXPECTED,
    DEFAULT_SPEND_FLOOR_PCT,
    TrackingRule,
)
from metrics_pipeline.meta.versions import RETIRED_WINDOWS, SERVED_WINDOWS
from metrics_pipeline.text import CONTROL_CHARACTER

BUNDLED_CLIENTS_FILE = Path(__file__).with_name("demo_clients.yaml")
CLIENTS_FILE_ENV = "METRICS_CLIENTS_FILE"
# Characters Dagster reserves in partition keys.
_RESERVED_ID_CHARACTERS = set("|,[]*")
DEFAULT_ATTRIBUTION_WINDOWS = ("7d_click", "1d_view")


class ClientsFileError(ValueError):
    """The clients file cannot be used; the message names the client and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleConfig(_Strict):
    action_types: tuple[str, ...] = Field(min_length=1)
    combine: Literal["first", "sum"] = "first"

    @model_validator(mode="after")
    def _never_sum_synonyms(self) -> RuleConfig:
        overlap = MetricRule(self.action_types, self.combine).overlapping_synonyms()
        if overlap:
            raise ValueError(
                f"combine 'sum' would add synonyms {sorted(overlap)} that report the same "
                "events; use combine 'first'"
            )
        return self


class _ConversionsBase(_Strict):
    """A client's conversion rules; `conversions_model` adds one optional field per
    metric of the registry that has a rule."""

    registry: ClassVar[MetricRegistry]
    total_conversions: tuple[str, ...] | None = None

    @field_validator("total_conversions")
    @classmethod
    def _known_metrics(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        known = [m.name for m in cls.registry.count_rule_metrics]
        for metric in value or ():
            if metric not in known:
                raise ValueError(f"unknown metric {metric!r}; use {', '.join(known)}")
        return value

    def to_mapping(self) -> ConversionMapping:
        default = default_mapping(self.registry)
        rules = dict(default.rules)
        for metric in self.registry.rule_metrics:
            configured = getattr(self, metric.name)
            if configured is not None:
                rules[metric.frame_column] = MetricRule(configured.action_types, configured.combine)
        total = self.total_conversions or default.total_conversions
        return ConversionMapping(rules, tuple(total), self.registry)


def conversions_model(metrics: MetricRegistry = METRICS) -> type[_ConversionsBase]:
    """The clients file's `conversions` section for `metrics`: each metric with a rule may
    override it under its own name."""
    fields: dict[str, Any] = {m.name: (RuleConfig | None, None) for m in metrics.rule_metrics}
    model = create_model("ConversionsConfig", __base__=_ConversionsBase, **fields)
    model.registry = metrics
    return model


ConversionsConfig = conversions_model()


class TargetsConfig(_Strict):
    conversions: int | None = Field(default=None, ge=0)
    reservations: int | None = Field(default=None, ge=0)


class QualityConfig(_Strict):
    """Bounds the daily quality check holds a client's numbers to."""

    ctr_percent: tuple[Decimal, Decimal] = (Decimal("0.1"), Decimal("10"))
    cpc: tuple[Decimal, Decimal] = (Decimal("0.10"), Decimal("50"))  # client currency
    daily_spend_ceiling: Decimal | None = Field(default=None, ge=0)
    check_funnel: bool = True  # booking_step_1 >= booking_step_2 >= booking_step_3

    @field_validator("ctr_percent", "cpc")
    @classmethod
    def _ordered(cls, value: tuple[Decimal, Decimal]) -> tuple[Decimal, Decimal]:
        if value[0] < 0 or value[0] > value[1]:
            raise ValueError(f"expected [low, high] with 0 <= low <= high, got {list(value)}")
        return value


class PacingConfig(_Strict):
    """When the month's projection counts as off pace (see `domain.pacing`)."""

    spend_band_pct: tuple[Decimal, Decimal] = DEFAULT_SPEND_BAND_PCT  # of monthly_budget
    target_floor_pct: Decimal = Field(default=DEFAULT_TARGET_FLOOR_PCT, ge=0)  # of each target

    @field_validator("spend_band_pct")
    @classmethod
    def _ordered(cls, value: tuple[Decimal, Decimal]) -> tuple[Decimal, Decimal]:
        if value[0] < 0 or value[0] > value[1]:
            raise ValueError(f"expected [low, high] with 0 <= low <= high, got {list(value)}")
        return value

    @property
    def rule(self) -> PaceRule:
        return PaceRule(self.spend_band_pct, self.target_floor_pct)


class TrackingConfig(_Strict):
    """When the conversion_tracking check calls a client's tracking broken (`domain.tracking`)."""

    enabled: bool = True
    conversions: str = "reservations"  # the conversion metric watched
    drop_pct: Decimal = Field(default=DEFAULT_DROP_PCT, ge=0, le=100)  # of the expected
    spend_floor_pct: Decimal = Field(default=DEFAULT_SPEND_FLOOR_PCT, ge=0)  # of the usual
    min_expected: int = Field(default=DEFAULT_MIN_EXPECTED, ge=1)  # conversions the days lost

    @field_validator("conversions")
    @classmethod
    def _count_metric(cls, value: str) -> str:
        known = ["total_conversions", *(m.name for m in METRICS.count_rule_metrics)]
        if value not in known:
            raise ValueError(f"unknown conversion metric {value!r}; use {', '.join(known)}")
        return value

    @property
    def rule(self) -> TrackingRule:
        return TrackingRule(self.drop_pct, self.spend_floor_pct, self.min_expected)


class AnomaliesConfig(_Strict):
    """How far a day's spend, CPA and ROAS may stray before kpi_anomalies warns
    (`domain.anomalies`)."""

    enabled: bool = True
    band_width: Decimal = Field(default=DEFAULT_BAND_WIDTH, gt=0)
    min_factor: Decimal = Field(default=DEFAULT_MIN_FACTOR, gt=1)
    min_conversions: int = Field(default=DEFAULT_MIN_CONVERSIONS, ge=0)

    @property
    def rule(self) -> AnomalyRule:
        return AnomalyRule(self.band_width, self.min_factor, self.min_conversions)


class ClientConfig(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    meta_ad_account_id: str
    timezone: str | None = None
    currency: str | None = None
    monthly_budget: Decimal | None = Field(default=None, ge=0)
    targets: TargetsConfig = TargetsConfig()
    attribution_windows: tuple[str, ...] = DEFAULT_ATTRIBUTION_WINDOWS
    conversions: ConversionsConfig = ConversionsConfig()
    quality: QualityConfig = QualityConfig()
    pacing: PacingConfig = PacingConfig()
    tracking: TrackingConfig = TrackingConfig()
    anomalies: AnomaliesConfig = AnomaliesConfig()

    @field_validator("id", "meta_ad_account_id", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: object) -> object:
        # YAML reads 42 as a number; an id is text either way.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("id", "name")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        # Both are printed on terminals and in alerts, and the id is part of partition keys,
        # log lines and file names: a newline or escape there would forge or garble them.
        found = sorted(set(CONTROL_CHARACTER.findall(value)))
        if found:
            codes = ", ".join(f"U+{ord(c):04X}" for c in found)
            raise ValueError(f"{value!r} may not contain control characters ({codes})")
        return value

    @field_validator("id")
    @classmethod
    def _id_usable_as_partition_key(cls, value: str) -> str:
        bad = sorted(_RESERVED_ID_CHARACTERS.intersection(value))
        if bad or value != value.strip():
            raise ValueError(
                f"{value!r} may not contain {' '.join(bad) or 'leading or trailing spaces'}"
            )
        return value

    @field_validator("meta_ad_account_id")
    @classmethod
    def _account_id(cls, value: str) -> str:
        if not re.fullmatch(r"act_\d+", value):
            raise ValueError(f"{value!r} must look like 'act_<digits>'")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not is_known_currency(value):
            raise ValueError(f"unknown currency {value!r}")
        return value

    @field_validator("attribution_windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        served = ", ".join(SERVED_WINDOWS)
        for window in value:
            if window in RETIRED_WINDOWS:
                # Meta would silently leave the window out: refuse it instead of storing nothing.
                raise ValueError(
                    f"attribution window {window!r} is no longer returned by Meta since "
                    f"{RETIRED_WINDOWS[window]}; windows still served: {served}"
                )
            if window not in SERVED_WINDOWS:
                raise ValueError(f"unknown attribution window {window!r}; windows served: {served}")
        return value

    @property
    def conversion_mapping(self) -> ConversionMapping:
        return self.conversions.to_mapping()


def _describe(error: dict, clients: list) -> str:
    location = list(error["loc"])
    where = "clients file"
    if len(location) >= 2 and location[0] == "clients" and isinstance(location[1], int):
        index = location[1]
        raw = clients[index] if index < len(clients) else {}
        label = raw.get("id") if isinstance(raw, dict) else None
        where = f"client {label!r}" if label else f"client #{index + 1}"
        location = location[2:]
    field_path = ".".join(str(p) for p in location) or "(entry)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{where}, field '{field_path}': {message}"


class ClientsFile(_Strict):
    clients: tuple[ClientConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> ClientsFile:
        seen: set[str] = set()
        for client in self.clients:
            if client.id in seen:
                raise ValueError(f"duplicate client id {client.id!r}")
            seen.add(client.id)
        return self


@cache
def clients_file_model(metrics: MetricRegistry = METRICS) -> type[ClientsFile]:
    """The whole clients file for `metrics`: each client's `conversions` per `conversions_model`."""
    if metrics is METRICS:
        return ClientsFile
    conversions = conversions_model(metrics)
    client = create_model(
        "ClientConfig", __base__=ClientConfig, conversions=(conversions, conversions())
    )
    return create_model(
        "ClientsFile", __base__=ClientsFile, clients=(tuple[client, ...], Field(min_length=1))
    )


def parse_clients(
    text: str, source: str = "clients file", metrics: MetricRegistry = METRICS
) -> tuple[ClientConfig, ...]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClientsFileError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("clients"), list):
        raise ClientsFileError(f"{source}: expected a mapping with a 'clients' list")
    try:
        return clients_file_model(metrics).model_validate(document).clients
    except ValidationError as exc:
        errors = exc.errors()
        # An invalid entry also makes the list look empty; report only the real problems.
        specific = [e for e in errors if e["type"] != "too_short"] or errors
        problems = "; ".join(_describe(e, document["clients"]) for e in specific)
        raise ClientsFileError(f"{source}: {problems}") from None


def clients_file_path() -> Path:
    configured = os.environ.get(CLIENTS_FILE_ENV)
    if configured:
        return Path(configured)
    local = Path.cwd() / "clients.yaml"
    return local if local.exists() else BUNDLED_CLIENTS_FILE


@cache
def _load(path: str, mtime: float) -> tuple[ClientConfig, ...]:
    return parse_clients(Path(path).read_text(encoding="utf-8"), source=path)


def load_clients(path: Path | None = None) -> tuple[ClientConfig, ...]:
    path = path or clients_file_path()
    if not path.exists():
        raise ClientsFileError(f"{path}: clients file not found (set {CLIENTS_FILE_ENV})")
    return _load(str(path), path.stat().st_mtime)
