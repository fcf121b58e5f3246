"""Studies: controlled experiments built on the library (one module per study)."""
