"""Synthetic pathology reports whose wording reflects the case's risk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amc.synthetic.tcga.profiles import _shown

_ROMAN = ["I", "II", "III", "IV"]


def _stage(x: float) -> int:
    return int(np.digitize(x, [-0.6, 0.15, 0.9]))  # 0..3


def _grade(x: float) -> int:
    return int(np.digitize(x, [-0.5, 0.5])) + 1  # 1..3


def _report_text(project: str, x: float, rng: np.random.Generator) -> str:
    """Free-text report whose grade / stage / size / node wording reflects ``x``."""
    g, st = _grade(x + rng.normal(0, 0.2)), _stage(x + rng.normal(0, 0.2))
    size = max(0.4, 2.0 + 1.3 * x + rng.normal(0, 0.5))
    n_total = int(rng.integers(6, 25))
    n_pos = min(n_total, int(rng.poisson(max(0.0, x + 0.3) * 2.5)))
    lvi = "present, extensive" if x > 0.9 else ("present, focal" if x > 0.2 else "not identified")
    margin = (
        f"involved by carcinoma at the {rng.choice(['deep', 'radial', 'lateral'])} margin"
        if x > 1.1
        else f"negative; closest margin {rng.uniform(0.3, 2.5):.1f} cm"
    )
    diff = {1: "well differentiated", 2: "moderately differentiated", 3: "poorly differentiated"}[g]
    side = str(rng.choice(["left", "right"]))
    case = _Case(project, x, g, st, diff, side, n_pos)
    specimen, diagnosis = _WORDING.get(project.upper(), _generic_wording)(case, rng)
    if project.upper() == "LGG":  # brain tumours: no nodes, invasion or margins
        return _assemble_report(specimen, diagnosis, size, None, None, None, rng)
    return _assemble_report(specimen, diagnosis, size, (n_pos, n_total), lvi, margin, rng)


@dataclass(frozen=True)
class _Case:
    """What the project-specific wording of a report is drawn from."""

    project: str
    x: float  # the risk the report reveals
    grade: int  # 1..3
    stage: int  # 0..3
    diff: str  # differentiation wording of the grade
    side: str
    n_pos: int  # positive lymph nodes


def _ucec_wording(c: _Case, rng: np.random.Generator) -> tuple[str, str]:
    hist = "serous carcinoma" if c.x > 1.2 else "endometrioid adenocarcinoma"
    depth = int(np.clip(20 + 35 * c.x + rng.normal(0, 10), 2, 98))
    specimen = (
        "Uterus, cervix, bilateral fallopian tubes and ovaries: total hysterectomy and "
        "bilateral salpingo-oophorectomy"
    )
    diagnosis = (
        f"{hist.capitalize()}, FIGO grade {c.grade} ({c.diff}).\n"
        f"Myometrial invasion: {depth}% of myometrial thickness.\n"
        f"FIGO stage: {_ROMAN[c.stage]}{rng.choice(['A', 'B'])}."
    )
    return specimen, diagnosis


def _luad_wording(c: _Case, rng: np.random.Generator) -> tuple[str, str]:
    pattern = ["lepidic", "acinar", "papillary", "solid", "micropapillary"][
        int(np.clip(round(1.5 + 1.2 * c.x + rng.normal(0, 0.4)), 0, 4))
    ]
    specimen = f"Lung, {c.side} {rng.choice(['upper', 'lower'])} lobe: lobectomy"
    pleura = "present (PL1)" if c.x > 0.6 else "not identified"
    diagnosis = (
        f"Invasive adenocarcinoma, {pattern} predominant, {c.diff}.\n"
        f"Visceral pleural invasion: {pleura}.\n"
        f"pT{min(4, c.stage + 1)} pN{min(2, c.n_pos // 3)}."
    )
    return specimen, diagnosis


def _lgg_wording(c: _Case, rng: np.random.Generator) -> tuple[str, str]:
    if c.x < -0.3:
        hist = "Oligodendroglioma, IDH-mutant and 1p/19q-codeleted, CNS WHO grade 2"
    elif c.x < 0.6:
        hist = "Astrocytoma, IDH-mutant, CNS WHO grade 2"
    else:
        hist = "Astrocytoma, IDH-mutant, CNS WHO grade 3 (anaplastic)"
    ki67 = float(np.clip(4 + 8 * c.x + rng.normal(0, 2), 1, 60))
    mitoses = int(max(0, rng.poisson(max(0.2, 2 + 3 * c.x))))
    specimen = f"Brain, {c.side} {rng.choice(['frontal', 'temporal', 'parietal'])} lobe: resection"
    diagnosis = (
        f"{hist}.\nMitotic figures: {mitoses} per 10 high-power fields.\n"
        f"Ki-67 labeling index: approximately {ki67:.0f}%.\n"
        f"Microvascular proliferation: {'present' if c.x > 1.3 else 'not identified'}.\n"
        "Necrosis: not identified."
    )
    return specimen, diagnosis


def _brca_wording(c: _Case, rng: np.random.Generator) -> tuple[str, str]:
    parts = [int(np.clip(round(1 + 0.8 * (c.x + 1) + rng.normal(0, 0.4)), 1, 3)) for _ in range(3)]
    er = "negative" if c.x > 1.0 else "positive (90%, strong)"
    her2 = "positive (3+)" if c.x > 1.4 else "negative (1+)"
    specimen = f"Breast, {c.side}: {rng.choice(['modified radical mastectomy', 'lumpectomy'])}"
    diagnosis = (
        f"Invasive ductal carcinoma, Nottingham grade {c.grade} ({c.diff}); tubule formation "
        f"{parts[0]}, nuclear pleomorphism {parts[1]}, mitotic count {parts[2]}; "
        f"total score {sum(parts)}/9.\n"
        f"Estrogen receptor: {er}. HER2: {her2}.\n"
        f"AJCC pathologic stage {_ROMAN[c.stage]}."
    )
    return specimen, diagnosis


def _blca_wording(c: _Case, rng: np.random.Generator) -> tuple[str, str]:
    invasion = [
        "lamina propria",
        "muscularis propria (detrusor muscle)",
        "perivesical soft tissue",
        "adjacent organs (prostate / vagina)",
    ][c.stage]
    specimen = "Urinary bladder, prostate and seminal vesicles: radical cystoprostatectomy"
    diagnosis = (
        f"Invasive urothelial carcinoma, {'high' if c.grade >= 2 else 'low'} grade.\n"
        f"Tumor invades {invasion}.\npT{c.stage + 1}."
    )
    return specimen, diagnosis


def _generic_wording(c: _Case, rng: np.random.Generator) -> tuple[str, str]:
    specimen = f"{c.project} primary tumor: resection"
    diagnosis = (
        f"Carcinoma, {c.diff}, histologic grade {c.grade}.\nPathologic stage {_ROMAN[c.stage]}."
    )
    return specimen, diagnosis


_WORDING = {
    "UCEC": _ucec_wording,
    "LUAD": _luad_wording,
    "LGG": _lgg_wording,
    "BRCA": _brca_wording,
    "BLCA": _blca_wording,
}


def _assemble_report(
    specimen: str,
    diagnosis: str,
    size: float,
    nodes: tuple[int, int] | None,
    lvi: str | None,
    margin: str | None,
    rng: np.random.Generator,
) -> str:
    lines = [
        "SURGICAL PATHOLOGY REPORT",
        "",
        f"SPECIMEN: {specimen}.",
        "",
        "FINAL DIAGNOSIS:",
        diagnosis,
        f"Tumor size: {size:.1f} cm in greatest dimension.",
    ]
    if lvi is not None:
        lines.append(f"Lymphovascular invasion: {lvi}.")
    if margin is not None:
        lines.append(f"Margins: {margin}.")
    if nodes is not None:
        pos, tot = nodes
        lines.append(
            f"Lymph nodes: {'metastatic carcinoma in' if pos else 'negative for'} "
            f"{f'{pos} of ' if pos else ''}{tot} lymph nodes examined."
        )
    lines += [
        "",
        "GROSS DESCRIPTION:",
        f"Received fresh labeled with the patient's name, a specimen measuring "
        f"{rng.uniform(5, 20):.1f} x {rng.uniform(3, 12):.1f} x {rng.uniform(1, 6):.1f} cm. "
        "Representative sections are submitted.",
        "",
        "Electronically signed out by the attending pathologist.",
    ]
    return "\n".join(lines) + "\n"


_BOILERPLATE = [
    "SURGICAL PATHOLOGY REPORT\n\nFINAL DIAGNOSIS: See synoptic report and addendum.\n"
    "Specimen received in formalin. Gross description dictated.\n"
    "Electronically signed out.\n",
    "PATHOLOGY CONSULTATION\n\nSlides and blocks received from outside institution for "
    "review. Please refer to the original report for diagnosis.\n",
    "ADDENDUM REPORT\n\nAdditional immunohistochemical stains were performed on block A3. "
    "Controls are appropriate. The original diagnosis is unchanged.\n",
]


def _garble(text: str, severity: float, rng: np.random.Generator) -> str:
    """OCR-like noise: drop / swap characters and lines."""
    chars = np.array(list(text))
    n = int(len(chars) * 0.25 * severity)
    idx = rng.choice(len(chars), size=n, replace=False)
    chars[idx] = rng.choice(list("il1|o0O rn.,~"), size=n)
    lines = "".join(chars).split("\n")
    keep = [ln for ln in lines if rng.random() > 0.3 * severity]
    return "\n".join(keep) + "\n"


def draw_report(
    pid: str, orphan: bool, project: str, r: float, qr: float, crng: np.random.Generator
) -> tuple[str | None, float, str]:
    """One case's report text (None: no report file), its quality and corruption label."""
    u = crng.random()
    if orphan or u < 0.08:
        return None, 0.0, "missing"
    if u < 0.10:
        return "\n", 0.0, "empty"  # empty file: treated as missing by the reader
    if qr < 0.3:
        return _BOILERPLATE[int(crng.integers(0, len(_BOILERPLATE)))], 0.0, "boilerplate"
    text = _report_text(project, _shown(r, qr, crng), crng)
    corruption = "none"
    if qr < 0.5:
        text = _garble(text, (0.5 - qr) / 0.2, crng)
        corruption = "ocr_noise"
    return text, qr, corruption
