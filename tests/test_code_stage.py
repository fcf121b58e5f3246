"""The code stage: one fingerprint file per group, bytes that change only with the files."""

import json

import pytest

from amc.errors import InputError
from stages import code


def test_groups_write_one_fingerprint_each(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("b = 2\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    (tmp_path / "tool.py").write_text("t = 3\n")
    argv = ["--out", "out/one.json", "pkg", "--out", "out/two.json", "tool.py", "pkg/a.py"]
    code.main(argv)
    one = json.loads((tmp_path / "out/one.json").read_text())
    two = json.loads((tmp_path / "out/two.json").read_text())
    assert sorted(one) == ["pkg/a.py", "pkg/sub/b.py"]  # bytecode is not source
    assert sorted(two) == ["pkg/a.py", "tool.py"]
    before = (tmp_path / "out/two.json").read_bytes()
    (tmp_path / "pkg" / "sub" / "b.py").write_text("b = 3\n")  # only group one's file
    code.main(argv)
    assert (tmp_path / "out/two.json").read_bytes() == before
    assert (
        json.loads((tmp_path / "out/one.json").read_text())["pkg/sub/b.py"] != one["pkg/sub/b.py"]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pkg"], "expected `--out FILE"),
        (["--out"], "--out needs a file name"),
        (["--out", "a.json"], "no paths for a.json"),
        (["--out", "a.json", "missing.py"], "missing.py: not found"),
    ],
)
def test_bad_arguments_name_the_problem(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message):
        code.main(argv)
    assert not (tmp_path / "a.json").exists()
