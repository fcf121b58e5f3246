"""amc.synthetic."""
