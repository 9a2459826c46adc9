"""The asset graph, one folder per Dagster group; each folder holds its assets and checks."""
