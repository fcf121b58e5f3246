"""Synthetic ADNI subjects: class, phase, RID / PTID, demographics, latent severity per
modality, per-modality quality and the ADNI-like missingness pattern."""

from __future__ import annotations

import numpy as np
import pandas as pd

CLASS_NAMES = ("CN", "MCI", "AD")
CLASS_PROBS = (0.35, 0.40, 0.25)
MODALITIES = ("mri", "biospecimen", "clinical", "genomic")

_SITES = (
    "002", "003", "005", "006", "007", "009", "011", "012", "013", "014", "016", "018", "019",
    "022", "023", "024", "027", "029", "031", "032", "033", "035", "036", "037", "041", "051",
    "052", "053", "057", "062", "067", "068", "070", "072", "073", "082", "094", "098", "099",
    "100", "114", "116", "123", "126", "127", "128", "130", "131", "135", "136", "137", "141",
)  # fmt: skip
_PHASES = {  # phase: (probability, RID range, baseline year range)
    "ADNI1": (0.30, (2, 1450), (2005, 2007)),
    "ADNIGO": (0.10, (2000, 2450), (2009, 2010)),
    "ADNI2": (0.30, (4000, 5300), (2011, 2013)),
    "ADNI3": (0.30, (6000, 7300), (2016, 2019)),
}
_APOE_FREQ = np.array([[0.10, 0.78, 0.12], [0.05, 0.63, 0.32], [0.02, 0.48, 0.50]])


def _quality(rng: np.random.Generator) -> float:
    """Per-subject, per-modality quality: mostly good, a fifth poor."""
    if rng.random() < 0.2:
        return float(np.clip(rng.beta(2.0, 3.5), 0.02, 1.0))
    return float(np.clip(rng.beta(9.0, 1.8), 0.02, 1.0))


def _make_subjects(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Demographics, class, latent severities, missingness pattern and qualities per subject."""
    cls = rng.choice(3, size=n, p=CLASS_PROBS)
    if len(set(cls.tolist())) < 3:  # tiny cohorts: every class present
        cls[:3] = [0, 1, 2]
    phases = list(_PHASES)
    phase = rng.choice(len(phases), size=n, p=[_PHASES[p][0] for p in phases])
    rids: list[int] = []
    used: set[int] = set()
    for ph in phase:
        lo, hi = _PHASES[phases[ph]][1]
        while True:
            rid = int(rng.integers(lo, hi))
            if rid not in used:
                used.add(rid)
                rids.append(rid)
                break
    sites = rng.choice(len(_SITES), size=n)
    ptid = [f"{_SITES[s]}_S_{r:04d}" for s, r in zip(sites, rids, strict=True)]
    female_p = np.array([0.52, 0.42, 0.45])[cls]
    age = np.array([73.5, 72.8, 75.0])[cls] + rng.normal(0, 6.5, n)
    age = np.clip(age, 55.0, 91.0)
    shared = rng.normal(0, 0.25, n)
    base = cls.astype(float)
    df = pd.DataFrame(
        {
            "RID": rids,
            "PTID": ptid,
            "site": sites,
            "phase": [phases[p] for p in phase],
            "cls": cls,
            "age": np.round(age, 1),
            "female": rng.random(n) < female_p,
            "educ": np.clip(np.round(rng.normal(16.2 - 0.4 * cls, 2.8)), 6, 20).astype(int),
        }
    )
    # modality-specific latent severity (0 = CN ... 2 = AD on average)
    for m, sd in (("mri", 0.35), ("biospecimen", 0.40), ("clinical", 0.35), ("genomic", 0.0)):
        df[f"sev_{m}"] = base + shared + rng.normal(0, sd, n) if sd else base
    for m in MODALITIES:
        df[f"q_{m}"] = [_quality(rng) for _ in range(n)]
    # missingness as in ADNI: a few subjects in the diagnosis table only; then per modality
    diag_only = rng.random(n) < 0.05
    has = {
        "mri": rng.random(n) > 0.12,
        "biospecimen": rng.random(n) > 0.25,
        "clinical": rng.random(n) > 0.02,
        "genomic": rng.random(n) > 0.15,
    }
    if n >= 20:  # small cohorts still show every pattern (tests rely on it)
        if not diag_only.any():
            diag_only[n - 1] = True
        others = np.flatnonzero(~diag_only)
        for k, m in enumerate(("mri", "biospecimen", "genomic")):
            if has[m][~diag_only].all():
                has[m][others[k]] = False
                has["clinical"][others[k]] = True
    none = ~np.any(np.stack(list(has.values())), axis=0)
    has["clinical"] = has["clinical"] | none  # every subject not diag-only has >= 1 modality
    for m in MODALITIES:
        df[f"has_{m}"] = has[m] & ~diag_only
    df["diag_only"] = diag_only
    # a few subjects never get a diagnosis (data but no label): the caller decides
    df["no_dx"] = (rng.random(n) < 0.015) & ~diag_only
    return df


def _observed(sev: float, q: float, rng: np.random.Generator) -> float:
    """A modality's view of the severity: poor quality mixes in an unrelated severity."""
    return q * sev + (1 - q) * rng.normal(1.0, 0.8)


def _apoe_genotype(cls: int, rng: np.random.Generator) -> tuple[int, int]:
    a = sorted(int(x) for x in rng.choice([2, 3, 4], size=2, p=_APOE_FREQ[cls]))
    return a[0], a[1]
