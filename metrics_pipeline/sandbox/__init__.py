"""A local imitation of Meta's Graph API, with its own ground truth, for demos and tests."""
