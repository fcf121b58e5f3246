"""Training loop, seeding, checkpoints, early stopping, device/precision selection."""
