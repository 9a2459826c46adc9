"""What the asset steps share besides their own code: fan-out over clients, finishing a
step with some failed partitions, freshness policies and refresh conditions."""
