"""Patch bags of a feature table (the ``patches`` list column of the WSI table) as model input.

A modality whose encoder is ``bag`` feeds the query-token encoder every patch embedding with a
padding mask, instead of the patient's mean vector.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from amc.errors import InputError


class Bag(tuple):
    """``(bag (B, N, D) float32, mask (B, N) bool)`` that row-indexes and moves like a tensor.

    The network unpacks it as the ``(bag, mask)`` pair of a bag encoder; the training loop
    takes rows (``bag[idx]``) and moves it (``bag.to(device)``) as it does a tensor.
    """

    def __new__(cls, bag: torch.Tensor, mask: torch.Tensor) -> Bag:
        return super().__new__(cls, (bag, mask))

    def __getitem__(self, index):
        if isinstance(index, int):
            return tuple.__getitem__(self, index)
        return Bag(self[0][index], self[1][index])

    def to(self, *args, **kwargs) -> Bag:
        return Bag(self[0].to(*args, **kwargs), self[1].to(*args, **kwargs))


def read_bags(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded patch bags of a feature table with a ``patches`` list column.

    Returns
    -------
    tuple
        ``patient_ids`` (P,) object, ``bags`` (P, N_max, D) float32 zero-padded, ``mask``
        (P, N_max) bool (True for real patches).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    names = pq.read_schema(path).names
    if "patches" not in names:
        raise InputError(
            f"{path}: no 'patches' bag column for a bag encoder",
            hint="extract with sources.tcga.wsi.store_bags: true, or use encoders: {wsi: query}",
        )
    table = pq.read_table(path, columns=["patient_id", "patches"])
    ids = np.asarray(table.column("patient_id").to_pylist(), dtype=object)
    column = table.column("patches").combine_chunks()
    offsets = column.offsets.to_numpy()
    lengths = np.diff(offsets)
    items = column.values  # fixed_size_list<float32, D>
    dim = items.type.list_size
    flat = items.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)
    flat = flat[offsets[0] : offsets[-1]]
    longest = int(lengths.max()) if len(lengths) else 0
    bags = np.zeros((len(ids), max(longest, 1), dim), np.float32)
    mask = np.zeros((len(ids), max(longest, 1)), bool)
    starts = offsets[:-1] - offsets[0]
    for row, (start, n) in enumerate(zip(starts, lengths)):
        bags[row, :n] = flat[start : start + n]
        mask[row, :n] = True
    return ids, bags, mask


def bag_input(bags: np.ndarray, mask: np.ndarray, present: np.ndarray) -> Bag:
    """Model input of one bag modality; rows of absent patients are empty bags."""
    mask = mask & present.reshape(-1, 1)
    return Bag(torch.from_numpy(np.ascontiguousarray(bags)), torch.from_numpy(mask))
