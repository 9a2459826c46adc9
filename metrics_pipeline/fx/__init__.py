"""Exchange rates: the European Central Bank's euro reference rates feed."""
