"""Group `health`: how complete and fresh each client's collection is."""
