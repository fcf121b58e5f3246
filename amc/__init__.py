"""amc-pipeline: AMC (Adaptive Modality Token Re-balancing) fusion and the pipeline around it."""

__version__ = "0.1.0"
