"""amc.evaluation."""
