"""How strict the checks are: one resource, set from the environment in definitions."""

from dagster import ConfigurableResource


class CheckSettings(ConfigurableResource):
    completeness_days: int = 90  # history the completeness check covers
    completeness_target_pct: float = 99.5
    daily_fresh_by_hour: int = 6  # local hour after a day ends by which it must be stored
    cache_max_age_minutes: int = 15
