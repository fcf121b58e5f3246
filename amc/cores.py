"""CPU cores this process may use, without importing torch.

Feature extraction and the synthetic generators size their process pools and database threads
with it; :mod:`amc.runtime` re-exports it for training (threads per worker). ``os.cpu_count()``
counts the machine's cores and ignores ``taskset`` or a container's CPU set, so a pool sized by
it oversubscribes the cores the process may actually run on.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset / container CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


__all__ = ["available_cores"]
