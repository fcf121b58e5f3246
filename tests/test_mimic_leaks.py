"""The synthetic MIMIC-IV cohort plants label leaks; the default features must carry none.

Each leak is checked twice: absent from the default extraction, and present once the guard that
removes it is switched off (so the test fails if a guard is removed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amc.features.mimic import (
    code_bucket,
    code_token,
    extract_code_features,
    extract_lab_features,
    extract_note_texts,
    load_index_admissions,
)
from amc.synthetic.mimic import (
    LEAK_CODES,
    LEAK_LAB_ITEMID,
    LEAK_LAB_VALUE,
    LEAK_NOTE_PHRASE,
    generate_mimic_cohort,
)

VOCAB = 512
WIDE = 10_000.0  # a lab window wide enough that only the prediction time can exclude a result


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mimic_leaks")
    generate_mimic_cohort(out, n_patients=300, seed=5)
    return out


def _without_time_guard(index: pd.DataFrame) -> pd.DataFrame:
    return index.assign(prediction_time=pd.Timestamp("2260-01-01"))  # after every date


def _leak_buckets() -> set[int]:
    return {code_bucket(code_token("dx", v, c), VOCAB) for c, v in LEAK_CODES}


def _leak_lab_max(raw: Path, index: pd.DataFrame) -> np.ndarray:
    _, feats, names = extract_lab_features(raw, index, window_hours=WIDE)
    col = next(k for k, n in enumerate(names) if n.startswith(f"lab:{LEAK_LAB_ITEMID}:"))
    return feats[:, col + 2]  # "max"


def test_planted_leaks_exist_in_the_raw_files(raw: Path) -> None:
    kept = load_index_admissions(raw, deaths_before_prediction="keep")
    default = load_index_admissions(raw)
    assert len(kept) > len(default)  # some patients die in hospital
    lab = pd.read_csv(raw / "hosp/labevents.csv.gz", usecols=["itemid", "valuenum"])
    assert (lab["valuenum"] == LEAK_LAB_VALUE).sum() >= 5
    notes = pd.read_csv(raw / "note/discharge.csv.gz", usecols=["text"])
    assert notes["text"].str.contains(LEAK_NOTE_PHRASE, case=False).sum() >= 5
    dx = pd.read_csv(raw / "hosp/diagnoses_icd.csv.gz", dtype={"icd_code": str})
    assert dx["icd_code"].isin([c for c, _ in LEAK_CODES]).sum() >= 5
    # the leak buckets are not shared with another synthetic code (else the check is void)
    other = {
        code_bucket(code_token("dx", v, c), VOCAB)
        for c, v in dx[["icd_code", "icd_version"]].itertuples(index=False)
        if c not in {c for c, _ in LEAK_CODES}
    }
    assert not _leak_buckets() & other


def test_default_notes_do_not_state_the_death(raw: Path) -> None:
    index = load_index_admissions(raw)
    texts = extract_note_texts(raw, index)
    assert len(texts) > 100
    assert not texts.str.contains(LEAK_NOTE_PHRASE, case=False).any()
    # guard 1 off (prediction time): the addenda charted on the day of death appear
    late = extract_note_texts(raw, _without_time_guard(index))
    assert late.str.contains("expired at home", case=False).sum() >= 3
    # guard 2 off (deaths before the prediction time kept): the summaries of the dead appear
    kept = extract_note_texts(raw, load_index_admissions(raw, deaths_before_prediction="keep"))
    assert kept.str.contains("Disposition:\nExpired", regex=False).sum() >= 3


def test_default_codes_carry_no_death_code(raw: Path) -> None:
    buckets = sorted(_leak_buckets())
    _, feats, _ = extract_code_features(raw, load_index_admissions(raw), VOCAB)
    assert feats[:, buckets].sum() == 0
    kept = load_index_admissions(raw, deaths_before_prediction="keep")
    # deaths kept: the death-code filter still removes the codes ...
    _, feats, _ = extract_code_features(raw, kept, VOCAB)
    assert feats[:, buckets].sum() == 0
    # ... and without it they appear, only in positives
    _, leak, _ = extract_code_features(raw, kept, VOCAB, exclude=())
    hit = leak[:, buckets].max(axis=1) == 1
    assert hit.sum() >= 3 and kept["label"].to_numpy()[hit].all()


def test_default_labs_stop_at_the_prediction_time(raw: Path) -> None:
    index = load_index_admissions(raw)
    assert not np.isclose(_leak_lab_max(raw, index), LEAK_LAB_VALUE).any()
    leak = np.isclose(_leak_lab_max(raw, _without_time_guard(index)), LEAK_LAB_VALUE)
    assert leak.sum() >= 3 and index["label"].to_numpy()[leak].all()


def test_prediction_time_inside_the_stay(raw: Path) -> None:
    index = load_index_admissions(raw, prediction_time="admission+24h")
    assert (index["prediction_time"] == index["admittime"] + pd.Timedelta(hours=24)).all()
    # nobody in the cohort died before 24 h; labs stop at 24 h even with a wide window
    assert not (index["death_time"] <= index["prediction_time"]).any()
    _, feats, names = extract_lab_features(raw, index, window_hours=WIDE)
    count = feats[:, [k for k, n in enumerate(names) if n.endswith(":count")]].sum()
    _, feats48, _ = extract_lab_features(
        raw, load_index_admissions(raw, prediction_time="admission+48h"), window_hours=WIDE
    )
    assert 0 < count < feats48[:, [k for k, n in enumerate(names) if n.endswith(":count")]].sum()
    # summaries are charted on the discharge day: only stays shorter than 24 h keep one
    texts = extract_note_texts(raw, index)
    short = index.set_index("patient_id")["dischtime"] - index.set_index("patient_id")[
        "admittime"
    ] <= pd.Timedelta(hours=24)
    assert set(texts.index) <= set(short[short].index)


def test_lab_engines_agree_on_the_synthetic_cohort(raw: Path) -> None:
    index = load_index_admissions(raw)
    a = extract_lab_features(raw, index, engine="duckdb")
    b = extract_lab_features(raw, index, engine="pandas", chunksize=5_000)
    assert a[2] == b[2] and len(a[2]) > 100
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
