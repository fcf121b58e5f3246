"""Session settings: under pytest-xdist (``make test`` runs one worker per core) each worker
keeps to one torch thread, so the workers do not oversubscribe the cores."""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)
