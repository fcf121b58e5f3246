"""One thin CLI per DVC stage."""
