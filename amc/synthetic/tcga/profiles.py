"""Per-project knobs of the synthetic TCGA cohort, file-format constants and shared draws."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import numpy as np

GDC_MISSING = "'--"
MODALITIES = ("wsi", "report", "rna")
SAMPLE_SHEET_COLUMNS = (
    "File ID",
    "File Name",
    "Data Category",
    "Data Type",
    "Project ID",
    "Case ID",
    "Sample ID",
    "Sample Type",
)
_ID_CHARS = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


@dataclass(frozen=True)
class _Profile:
    """Per-project knobs: tissue source sites, modality quality means, survival scale."""

    tss: tuple[str, ...]
    quality: tuple[float, float, float]  # mean quality of (wsi, report, rna)
    weibull_scale: float  # days, for r = 0
    censor_max: float  # days, censoring ~ U(30, censor_max)
    stain: tuple[int, int, int]  # stroma RGB


_PROFILES: dict[str, _Profile] = {
    "UCEC": _Profile(
        ("AX", "B5", "BG", "D1", "EO"), (0.75, 0.55, 0.80), 3800.0, 4000.0, (236, 160, 196)
    ),
    "LUAD": _Profile(
        ("05", "44", "55", "78", "MP"), (0.55, 0.75, 0.60), 2400.0, 3000.0, (232, 150, 190)
    ),
    "LGG": _Profile(
        ("DU", "HT", "FG", "TM", "S9"), (0.80, 0.45, 0.70), 4200.0, 4500.0, (226, 168, 206)
    ),
    "BRCA": _Profile(
        ("A2", "AR", "BH", "E2", "A8"), (0.60, 0.80, 0.55), 4500.0, 4800.0, (238, 156, 188)
    ),
    "BLCA": _Profile(
        ("BT", "DK", "FD", "GD", "XF"), (0.50, 0.60, 0.75), 1900.0, 2600.0, (230, 154, 194)
    ),
}
_DEFAULT_PROFILE = _Profile(("ZZ", "ZY", "ZX"), (0.6, 0.6, 0.6), 3000.0, 3500.0, (234, 158, 194))
_BETA = 0.9  # log hazard ratio per unit of latent risk
_WEIBULL_SHAPE = 1.3


# Fine corruption labels of this generator -> the shared vocabulary of amc.synthetic.quality
# (``quality.csv`` keeps both: ``corruption`` shared, ``detail`` fine).
_CORRUPTION_CLASS = {
    "none": "none",
    "missing": "missing",
    "empty": "missing",
    "no_clinical": "none",
    "blur": "noise",
    "pen": "noise",
    "stain_shift": "batch",
    "low_tissue": "sparse",
    "boilerplate": "template",
    "ocr_noise": "noise",
    "low_depth": "sparse",
    "batch_shift": "batch",
}


def _profile(project: str) -> _Profile:
    return _PROFILES.get(project.upper(), _DEFAULT_PROFILE)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _shown(r: float, q: float, rng: np.random.Generator) -> float:
    """What a modality of quality ``q`` reveals of risk ``r``: correlation ``q`` with ``r``."""
    return float(q * r + math.sqrt(max(0.0, 1.0 - q * q)) * rng.normal())


def _case_ids(rng: np.random.Generator, project: str, n: int, taken: set[str]) -> list[str]:
    prof = _profile(project)
    out: list[str] = []
    while len(out) < n:
        tss = prof.tss[int(rng.integers(0, len(prof.tss)))]
        pid = f"TCGA-{tss}-{''.join(rng.choice(_ID_CHARS, 4))}"
        if pid not in taken:
            taken.add(pid)
            out.append(pid)
    return out


def _beta(rng: np.random.Generator, mean: float, conc: float = 6.0) -> float:
    return float(rng.beta(mean * conc, (1 - mean) * conc))
