"""One Dagster asset graph for Meta advertising metrics."""

import warnings

# The graph needs three Dagster APIs still marked beta: `backfill_policy` (single-run
# backfills) and the multi-partition mappings that tie weeks, months and clients to their
# days. Their warnings say nothing a user can act on, in any process that loads the graph
# (the code server, the daemon, `dagster dev`, the tests); other beta warnings still show.
warnings.filterwarnings(
    "ignore",
    message=r"(Parameter `backfill_policy` of function `asset`|Class `MultiPartitionMapping`"
    r"|Class `MultiToSingleDimensionPartitionMapping`) is currently in beta",
)
