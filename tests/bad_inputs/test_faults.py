"""OS faults while a stage writes: full disk, file-size limit, read-only or blocked folder, and
leftovers of killed writes. Each error exits 3 naming the stage and the path, and leaves no
output and no temporary behind."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from amc.data.store import TMP_SUFFIX
from tests.bad_inputs.conftest import (
    DATASET,
    REPO,
    assert_failed,
    assert_no_output,
    run_cli,
    snapshot,
)

SPLIT_STAGE = f"split@{DATASET}"


@pytest.fixture()
def unsplit(project):
    """The project before its split stage ran (the output does not exist yet)."""
    project.splits.unlink()
    return project


def _disk_full_after(nbytes: int):
    """A pq.write_table that writes ``nbytes`` of the file, then fails as a full disk does."""

    def write_table(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1" + b"\0" * nbytes)
        raise OSError(errno.ENOSPC, "No space left on device")  # pyarrow names no file

    return write_table


def test_disk_full_while_writing_a_table(unsplit, run_stage, monkeypatch):
    monkeypatch.setattr(pq, "write_table", _disk_full_after(64))
    before = snapshot(unsplit.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 3, SPLIT_STAGE, str(unsplit.splits), "No space left on device")
    assert "free disk space" in result.stderr
    assert_no_output(unsplit.root, before)


def test_disk_full_while_writing_a_checkpoint(project, run_stage, monkeypatch):
    shutil.rmtree(project.root / "models")
    shutil.rmtree(project.root / ".cache")
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(".seed0.pt."):  # the model checkpoint's temporary
            real(self, data[:100])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    result = run_stage("train", DATASET)
    assert_failed(result, 3, f"train@{DATASET}", str(project.checkpoint()), "No space left")
    assert not any(p.is_file() for p in (project.root / "models" / DATASET).rglob("*"))


def test_file_size_limit_in_a_real_process(unsplit):
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG): a real fault, not a patch."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))

    before = snapshot(unsplit.root)
    result = run_cli(unsplit.root, "split", DATASET, preexec_fn=limit)
    assert_failed(result, 3, SPLIT_STAGE, str(unsplit.splits))
    assert "File too large" in result.stderr or "file size" in result.stderr.lower()
    assert_no_output(unsplit.root, before)


def test_read_only_folder(unsplit, run_stage, monkeypatch):
    """Simulated (tests may run as root, for whom chmod does not block writes)."""
    import tempfile

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", dir)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    before = snapshot(unsplit.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 3, SPLIT_STAGE, "data/splits", "Read-only file system")
    assert "writable" in result.stderr
    assert_no_output(unsplit.root, before)


def test_no_permission(unsplit, run_stage, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(src))

    monkeypatch.setattr(os, "replace", denied)
    before = snapshot(unsplit.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 3, SPLIT_STAGE, str(unsplit.splits), "Permission denied")
    assert_no_output(unsplit.root, before)


def test_output_folder_blocked_by_a_file(unsplit, run_stage):
    """A real OS error: a file stands where the output folder should be created."""
    shutil.rmtree(unsplit.root / "data/splits")
    (unsplit.root / "data/splits").write_text("not a folder")
    before = snapshot(unsplit.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 3, SPLIT_STAGE, "data/splits")
    assert_no_output(unsplit.root, before)


def test_leftover_of_a_killed_write_is_removed_at_the_next_write(unsplit, run_stage):
    folder = unsplit.root / "data/splits"
    leftovers = [
        folder / f".{DATASET}.parquet.k1ll3d{TMP_SUFFIX}",
        folder / f".{DATASET}.parquet.0ld.tmp",  # the naming of earlier versions
    ]
    for path in leftovers:
        path.write_bytes(b"half a parquet file")
    other = folder / f".other.parquet.x{TMP_SUFFIX}"  # another output's: not ours to remove
    other.write_bytes(b"")
    assert run_stage("split", DATASET).code == 0
    assert (unsplit.root / unsplit.splits).exists()
    assert not any(p.exists() for p in leftovers)
    assert other.exists()


def test_leftover_temporary_does_not_change_a_tracked_folder_hash(tmp_path):
    """The project's .dvcignore keeps a killed write's temporary out of DVC's folder hash."""
    from dvc.repo import Repo

    root = tmp_path / "repo"
    root.mkdir()
    repo = Repo.init(str(root), no_scm=True)
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    folder = root / "features"
    folder.mkdir()
    (folder / "lab.parquet").write_bytes(b"a finished table")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        repo.add("features")
        (folder / f".lab.parquet.k1ll3d{TMP_SUFFIX}").write_bytes(b"half a table")
        assert repo.status() == {}
        (folder / "stray.parquet").write_bytes(b"a real change")  # the check can fail
        assert repo.status() != {}
    finally:
        os.chdir(cwd)
        repo.close()


def test_unreadable_input_names_the_file(project, run_stage, monkeypatch):
    def io_error(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")  # as pyarrow raises it: no file named

    monkeypatch.setattr(pq, "read_schema", io_error)
    before = snapshot(project.root)
    result = run_stage("split", DATASET)
    assert_failed(result, 3, SPLIT_STAGE, str(project.features["a"]), "Input/output error")
    assert_no_output(project.root, before)
