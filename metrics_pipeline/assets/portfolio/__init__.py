"""The agency view: exchange rates and every client's numbers in one reporting currency."""
