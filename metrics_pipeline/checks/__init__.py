"""Check helpers every asset group shares: names, settings, quality rules, consistency
sums and the report format. Each group's own checks live beside its assets."""
