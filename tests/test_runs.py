import json
import os

import pytest

from definemed.config import StrictModel
from definemed.runs import RunDir, atomic_write_json, atomic_write_text, read_json, sha256_path


class C(StrictModel):
    seed: int = 1
    name: str = "t"


def test_rundir_writes_config_manifest_metrics(tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("hallo")
    run = RunDir(tmp_path / "run", "test").start(C(), seed=1, inputs={"data": data})
    man = read_json(run.manifest_path)
    assert man["status"] == "running" and man["seed"] == 1
    assert man["inputs"]["data"]["sha256"] == sha256_path(data)
    assert man["versions"]["torch"]
    assert not run.is_finished()
    run.finish({"loss": 1.5})
    assert run.is_finished()
    assert read_json(tmp_path / "run" / "metrics.json") == {"loss": 1.5}
    assert "seed: 1" in (tmp_path / "run" / "config.yaml").read_text()
    assert read_json(run.manifest_path)["finished"]
    assert (tmp_path / "run" / "run.log").exists()


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"a": 1})

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": Boom()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left behind


def test_folder_hash_changes_with_content(tmp_path):
    (tmp_path / "d").mkdir()
    atomic_write_text(tmp_path / "d" / "x", "1")
    h1 = sha256_path(tmp_path / "d")
    atomic_write_text(tmp_path / "d" / "x", "2")
    h2 = sha256_path(tmp_path / "d")
    assert h2 != h1
    os.rename(tmp_path / "d" / "x", tmp_path / "d" / "y")  # same content under another name
    assert sha256_path(tmp_path / "d") != h2


def test_reuse_returns_metrics_of_a_finished_run_and_refuses_other_configs(tmp_path):
    from definemed.errors import UserError

    run = RunDir(tmp_path / "r", "test")
    assert run.reuse(C()) is None
    run.start(C(), seed=1)
    assert run.reuse(C()) is None  # started, not finished
    run.finish({"x": 2})
    assert RunDir(tmp_path / "r", "test").reuse(C(), announce=False) == {"x": 2}
    with pytest.raises(UserError, match="different config"):
        RunDir(tmp_path / "r", "test").reuse(C(seed=2))
