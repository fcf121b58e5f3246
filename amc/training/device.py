"""Kept so existing imports work: the device helpers live in :mod:`amc.runtime`."""

from amc.runtime import autocast, autocast_dtype, select_device

__all__ = ["autocast", "autocast_dtype", "select_device"]
