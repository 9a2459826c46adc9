"""Check names, shared by the checks, the alerts and the tests."""

QUALITY = "quality"
COMPLETENESS = "completeness"
CONSISTENCY = "consistency"
FRESHNESS = "freshness"
