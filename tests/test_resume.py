"""Byte-identical results after a kill -9, and caches keyed on content.

- two identical trainings write byte-identical checkpoints (so DVC does not re-run evaluate);
- ``train`` killed by SIGKILL after an epoch resumes to the same checkpoint bytes as a run
  that was never interrupted;
- ``extract`` (MIMIC lab) killed by SIGKILL in the middle of writing its table leaves only an
  ignored temporary; the next run removes it and writes the same bytes as a clean run;
- the training-resume state is reused only for the same data, split, params and code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from amc.data.store import TMP_SUFFIX
from tests.bad_inputs.conftest import DATASET, REPO, build_project


def _child_env() -> dict[str, str]:
    return {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _run_killed(root: Path, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` (which SIGKILLs itself at a chosen point) in ``root``."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=root,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -9, done.stderr  # it really died of SIGKILL
    return done


@pytest.fixture()
def two_projects(tmp_path, monkeypatch):
    """Two identical split projects with 4 training epochs (checkpoints after each)."""
    roots = []
    for name in ("first", "second"):
        root = tmp_path / name
        build_project(root, stages=("split",))
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["train"].update(epochs=4, warmup_epochs=1, patience=50)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        roots.append(root)
    return roots


def _train_in(root: Path, monkeypatch) -> bytes:
    from stages import train

    monkeypatch.chdir(root)
    train.main([DATASET])
    return (root / "models" / DATASET / "amc" / "seed0.pt").read_bytes()


def test_identical_trainings_give_identical_checkpoint_bytes(two_projects, monkeypatch):
    first, second = (_train_in(root, monkeypatch) for root in two_projects)
    assert first == second


def _train_fresh(root: Path) -> tuple[bytes, str]:
    """``train`` in a new interpreter (as DVC runs it): the checkpoint bytes and the log."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging; logging.basicConfig(level=logging.INFO); "
            f"from stages import train; train.main([{DATASET!r}])",
        ],
        cwd=root,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return (root / "models" / DATASET / "amc" / "seed0.pt").read_bytes(), done.stderr


def test_train_killed_after_an_epoch_resumes_to_identical_bytes(two_projects):
    # Every training runs in its own interpreter, as under DVC, so nothing that earlier tests
    # left in this process (e.g. under pytest-xdist) can differ between the two runs.
    uninterrupted, killed = two_projects
    reference, _ = _train_fresh(uninterrupted)
    _run_killed(
        killed,
        f"""
        import os, signal
        from amc.training import resume
        resume.RESUME_EVERY_S = 0.0  # a state after every epoch
        real, calls = resume.save_state, []
        def save_then_die(*args):
            real(*args)
            calls.append(1)
            if len(calls) == 2:  # after epoch 2 of 4 is saved
                os.kill(os.getpid(), signal.SIGKILL)
        resume.save_state = save_then_die
        from stages import train
        train.main([{DATASET!r}])
        """,
    )
    assert not (killed / "models" / DATASET / "amc" / "seed0.pt").exists()
    resumed, log = _train_fresh(killed)
    assert "resuming at epoch 2" in log
    assert resumed == reference


def test_extract_killed_mid_write_reruns_to_identical_bytes(tmp_path, monkeypatch):
    from amc.synthetic.mimic import generate_mimic_cohort
    from stages import extract

    raw = tmp_path / "raw"
    generate_mimic_cohort(raw, n_patients=30, seed=0)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sources"]["mimic"]["raw"] = "raw"
    roots = {}
    for name in ("clean", "killed"):
        root = tmp_path / name
        root.mkdir()
        (root / "raw").symlink_to(raw)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        roots[name] = root
    out = Path("data/features/mimic/lab.parquet")
    _run_killed(
        roots["killed"],
        """
        import os, signal
        from pathlib import Path
        import pyarrow.parquet as pq
        real = pq.write_table
        def write_half_then_die(table, where, **kwargs):
            real(table, where, **kwargs)
            data = Path(where).read_bytes()
            Path(where).write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        pq.write_table = write_half_then_die
        from stages import extract
        extract.main(["mimic", "lab"])
        """,
    )
    folder = roots["killed"] / out.parent
    leftovers = [p for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX)]
    assert leftovers and not (roots["killed"] / out).exists()
    written = {}
    for name in ("killed", "clean"):
        monkeypatch.chdir(roots[name])
        extract.main(["mimic", "lab"])
        written[name] = (roots[name] / out).read_bytes()
    assert written["killed"] == written["clean"]
    assert not any(p.exists() for p in leftovers)


def test_resume_state_is_keyed_on_content(tmp_path, monkeypatch):
    """A finished state is reused for identical inputs, never after a change of the split,
    max_features or the library code (the data case is in test_training.py)."""
    from amc.data.cohort import load_cohort
    from amc.data.splits import make_splits
    from amc.training import loop, resume
    from tests.helpers import toy_dataset

    files, labels = toy_dataset(tmp_path, n=60, signal=3.0)
    cohort = load_cohort(files, labels, "classification")
    splits = make_splits(cohort.patient_ids, cohort.strata, [0, 1])
    by_seed = {
        s: rows.set_index("patient_id").loc[cohort.patient_ids, "split"].to_numpy()
        for s, rows in splits.groupby("seed")
    }
    model = dict(hidden=16, heads=2, layers=2, tokens=4, experts=2, top_k=1)
    settings = loop.TrainSettings(epochs=2, warmup_epochs=1, batch_size=16, num_threads=1)
    state_file = tmp_path / "seed0.resume.pt"
    epochs_run = {"n": 0}
    real = loop.validation_score

    def counting(*args, **kwargs):
        epochs_run["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "validation_score", counting)

    def train(split=by_seed[0], max_features=None) -> int:
        before = epochs_run["n"]
        loop.train_model(cohort, split, model, settings, 0, max_features, resume_path=state_file)
        return epochs_run["n"] - before

    assert train() == 2
    assert train() == 0  # same content: the finished state is reused
    assert not np.array_equal(by_seed[0], by_seed[1])
    assert train(split=by_seed[1]) == 2  # another split
    assert train(split=by_seed[1], max_features={"b": 5}) == 2  # another max_features
    monkeypatch.setattr(resume, "code_fingerprint", lambda: "edited library code")
    assert train(split=by_seed[1], max_features={"b": 5}) == 2  # the code changed
