"""Per-slide feature files (HDF5, the layout CLAM and TRIDENT read) and slide identities.

One ``<slide>.h5`` per slide:

- ``features``: (n_patches, D) float32 patch embeddings,
- ``coords``: (n_patches, 2) int64 level-0 ``(x, y)`` top-left corners (attributes
  ``patch_size``, ``patch_level``, ``patch_size_level0`` as CLAM / TRIDENT write them),
- file attributes: ``mpp``, ``target_mpp``, ``patch_size``, ``level``, ``encoder``,
  ``weights_sha256``, ``slide_sha256`` and ``meta`` (the full JSON record this pipeline reads).

A finished file is reused only when its encoder / parameter hash (``config``) and the slide's
content hash (``slide_sha256``) both match, so a slide replaced by another file of the same
name is embedded again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from amc.data.store import atomic_path, write_json
from amc.wsi.encoders import sha256_file

SUFFIX = ".h5"


def write_slide_h5(
    path: Path, features: np.ndarray, coords: np.ndarray, meta: Mapping[str, Any]
) -> None:
    """Write one slide's features, coordinates and attributes atomically."""
    import h5py

    encoder = meta.get("encoder") or {}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("features", data=np.asarray(features, np.float32))
            c = f.create_dataset("coords", data=np.asarray(coords, np.int64).reshape(-1, 2))
            c.attrs["patch_size"] = int(meta.get("params", {}).get("patch_size", 0))
            c.attrs["patch_level"] = int(meta.get("level", 0))
            c.attrs["patch_size_level0"] = int(meta.get("size0", 0))
            f.attrs["mpp"] = float(meta.get("mpp", float("nan")))
            f.attrs["target_mpp"] = float(meta.get("params", {}).get("target_mpp", float("nan")))
            f.attrs["patch_size"] = int(meta.get("params", {}).get("patch_size", 0))
            f.attrs["level"] = int(meta.get("level", 0))
            f.attrs["encoder"] = str(encoder.get("name", ""))
            f.attrs["weights_sha256"] = str(encoder.get("weights_sha256") or "")
            f.attrs["slide_sha256"] = str(meta.get("slide_sha256", ""))
            f.attrs["meta"] = json.dumps(dict(meta), sort_keys=True, default=str)


def read_slide_h5(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(features (n, D) float32, coords (n, 2) int64, meta dict)`` of a per-slide file."""
    import h5py

    with h5py.File(path, "r") as f:
        return f["features"][()], f["coords"][()], json.loads(f.attrs["meta"])


def read_done(path: Path) -> dict[str, Any] | None:
    """The meta of a finished per-slide file; None when absent, partial or unreadable."""
    if not path.is_file():
        return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            if "features" not in f or "coords" not in f:
                return None
            return json.loads(f.attrs["meta"])
    except Exception:  # unreadable / partial / old file: redo that slide
        return None


class SlideHashes:
    """Content hashes of slide files, memoised by (size, mtime, inode) like DVC's state.

    Hashing a slide reads it once; the memo (a JSON file in the per-slide folder) avoids
    reading unchanged slides again on a resumed run, while a replaced file (new mtime or
    inode) is hashed afresh.
    """

    def __init__(self, memo_path: Path) -> None:
        self.path = memo_path
        try:
            self.memo: dict[str, dict[str, Any]] = json.loads(memo_path.read_text())
        except Exception:
            self.memo = {}
        self.dirty = False

    def __call__(self, slide: Path) -> str:
        st = os.stat(slide)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        key = str(Path(slide).resolve())
        hit = self.memo.get(key)
        if hit is not None and hit.get("stamp") == stamp:
            return str(hit["sha256"])
        digest = sha256_file(Path(slide))
        self.memo[key] = {"stamp": stamp, "sha256": digest}
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.dirty:
            write_json(self.memo, self.path)
            self.dirty = False
