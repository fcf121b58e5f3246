"""Feature store, cohort assembly, splits and torch datasets."""
