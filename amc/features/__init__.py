"""amc.features."""
