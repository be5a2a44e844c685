"""The analysis side of the sweeps: statistics and reports (the lead fills this in)."""
