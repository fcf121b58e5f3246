"""Bad custom feature tables: every one stops the split stage with exit 2, a message naming the
file and the patient id or column, and no output written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.bad_inputs.conftest import DATASET, assert_failed, assert_no_output, snapshot


def _table(path: Path) -> pa.Table:
    return pq.read_table(path)


def _replace(table: pa.Table, name: str, column: pa.Array | list) -> pa.Table:
    index = table.column_names.index(name)
    array = column if isinstance(column, pa.Array) else pa.array(column)
    return table.set_column(index, name, array)


def _ids(table: pa.Table) -> list:
    return table.column("patient_id").to_pylist()


def _rows(table: pa.Table) -> list[list[float]]:
    return table.column("features").to_pylist()


def duplicate_id(t: pa.Table) -> tuple[pa.Table, str]:
    ids = _ids(t)
    ids[5] = ids[4]
    return _replace(t, "patient_id", ids), ids[4]


def no_patient_id(t: pa.Table) -> tuple[pa.Table, str]:
    return t.drop_columns(["patient_id"]), "patient_id"


def no_features(t: pa.Table) -> tuple[pa.Table, str]:
    return t.drop_columns(["features"]), "features"


def float_features(t: pa.Table) -> tuple[pa.Table, str]:
    return _replace(t, "features", [float(r[0]) for r in _rows(t)]), "features"


def string_features(t: pa.Table) -> tuple[pa.Table, str]:
    return _replace(t, "features", [",".join(map(str, r)) for r in _rows(t)]), "features"


def list_of_strings(t: pa.Table) -> tuple[pa.Table, str]:
    return _replace(t, "features", [[str(v) for v in r] for r in _rows(t)]), "features"


def empty_table(t: pa.Table) -> tuple[pa.Table, str]:
    return t.slice(0, 0), "no rows"


def null_id(t: pa.Table) -> tuple[pa.Table, str]:
    ids = _ids(t)
    ids[3] = None
    return _replace(t, "patient_id", pa.array(ids, pa.string())), "row 3"


def empty_id(t: pa.Table) -> tuple[pa.Table, str]:
    ids = _ids(t)
    ids[2] = ""
    return _replace(t, "patient_id", ids), "row 2"


def padded_id(t: pa.Table) -> tuple[pa.Table, str]:
    ids = _ids(t)
    ids[1] = f" {ids[1]}"
    return _replace(t, "patient_id", ids), repr(ids[1])


def float_ids(t: pa.Table) -> tuple[pa.Table, str]:
    return _replace(t, "patient_id", [float(i) for i in range(t.num_rows)]), "patient_id"


def nan_feature(t: pa.Table) -> tuple[pa.Table, str]:
    rows = _rows(t)
    rows[6][0] = float("nan")
    return _replace(t, "features", pa.array(rows, t.column("features").type)), _ids(t)[6]


def inf_feature(t: pa.Table) -> tuple[pa.Table, str]:
    rows = _rows(t)
    rows[7][1] = float("inf")
    return _replace(t, "features", pa.array(rows, t.column("features").type)), _ids(t)[7]


def ragged_rows(t: pa.Table) -> tuple[pa.Table, str]:
    rows = _rows(t)
    rows[9] = rows[9][:-1]
    return _replace(t, "features", pa.array(rows, pa.list_(pa.float32()))), _ids(t)[9]


def null_row(t: pa.Table) -> tuple[pa.Table, str]:
    rows = _rows(t)
    rows[8] = None
    return _replace(t, "features", pa.array(rows, t.column("features").type)), _ids(t)[8]


def ids_of_another_format(t: pa.Table) -> tuple[pa.Table, str]:
    # lower-case ids match no label: the modality would be silently absent for everyone
    return _replace(t, "patient_id", [i.lower() for i in _ids(t)]), _ids(t)[0].lower()


CASES: dict[str, Callable[[pa.Table], tuple[pa.Table, str]]] = {
    f.__name__: f
    for f in (
        duplicate_id,
        no_patient_id,
        no_features,
        float_features,
        string_features,
        list_of_strings,
        empty_table,
        null_id,
        empty_id,
        padded_id,
        float_ids,
        nan_feature,
        inf_feature,
        ragged_rows,
        null_row,
        ids_of_another_format,
    )
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_feature_table_is_named_and_nothing_is_written(project, run_stage, case):
    path = project.features["b"]
    table, named = CASES[case](_table(path))
    pq.write_table(table, path)
    before = snapshot(project.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 2, str(path), named)
    assert_no_output(project.root, before)


def test_feature_file_missing(project, run_stage):
    project.features["b"].unlink()
    before = snapshot(project.root)
    assert_failed(run_stage("split", DATASET), 2, str(project.features["b"]), "not found")
    assert_no_output(project.root, before)


def test_feature_file_not_parquet(project, run_stage):
    project.features["a"].write_bytes(b"patient_id,features\nP1,0.5\n")
    before = snapshot(project.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 2, str(project.features["a"]), "not a readable Parquet file")
    assert_no_output(project.root, before)


def test_feature_file_truncated(project, run_stage):
    data = project.features["a"].read_bytes()
    project.features["a"].write_bytes(data[: len(data) // 2])
    before = snapshot(project.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 2, str(project.features["a"]), "Parquet")
    assert_no_output(project.root, before)


def test_integer_ids_are_read_as_text(project, run_stage):
    """Documented handling: integer ids are accepted and matched as their decimal text."""
    import pandas as pd

    from amc.data.store import read_features, write_table

    for path in (*project.features.values(), project.labels):
        table = _table(path)
        numeric = [int(i[1:]) for i in _ids(table)]
        pq.write_table(_replace(table, "patient_id", pa.array(numeric, pa.int64())), path)
    ids, _, _ = read_features(project.features["a"])
    assert ids[0] == "0" and isinstance(ids[0], str)
    labels = pd.read_parquet(project.labels)
    write_table(labels, project.labels)
    assert run_stage("split", DATASET).code == 0
    assert np.isin(pd.read_parquet(project.splits)["patient_id"], ids).all()


def test_empty_table_is_never_written(tmp_path):
    import pandas as pd

    from amc.data.store import write_features, write_table
    from amc.errors import InputError

    labels = tmp_path / "labels.parquet"
    with pytest.raises(InputError, match=f"{labels}: refusing to write a table with no rows"):
        write_table(pd.DataFrame({"patient_id": [], "label": []}), labels)
    features = tmp_path / "lab.parquet"
    with pytest.raises(InputError, match=f"{features}: refusing .* no patients"):
        write_features(features, [], np.zeros((0, 4)))
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left
