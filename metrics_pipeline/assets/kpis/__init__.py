"""Group `kpis`: daily KPIs derived from meta_insights, the weekly and monthly summaries,
and their checks."""
