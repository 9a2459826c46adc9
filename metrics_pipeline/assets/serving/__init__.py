"""Group `serving`: the current-week cache and the per-client rollups, and their checks."""
