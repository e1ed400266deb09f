from pathlib import Path

import pytest
from pydantic import Field

from definemed.config import StrictModel, apply_overrides, load_config
from definemed.errors import UserError


class Inner(StrictModel):
    lr: float = 1e-4
    steps: int = Field(10, ge=1)


class Cfg(StrictModel):
    name: str
    train: Inner = Inner()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_loads_and_defaults(tmp_path):
    cfg = load_config(Cfg, write(tmp_path, "name: x\ntrain:\n  lr: 3e-4\n"))
    assert cfg.name == "x" and cfg.train.lr == 3e-4 and cfg.train.steps == 10


def test_overrides_win_over_file(tmp_path):
    cfg = load_config(Cfg, write(tmp_path, "name: x\n"), overrides=["train.steps=7", "name=y"])
    assert cfg.train.steps == 7 and cfg.name == "y"


@pytest.mark.parametrize("text,needle", [
    ("name: x\ntrain:\n  steps: many\n", "field 'train.steps'"),
    ("name: x\ntrain:\n  stepz: 3\n", "field 'train.stepz': unknown field"),
    ("train: {}\n", "field 'name'"),
    ("name: x\ntrain:\n  steps: 0\n", "greater than or equal to 1"),
    ("name: [x\n", "invalid YAML (line"),
    ("- a\n- b\n", "expected a mapping"),
])
def test_errors_name_file_and_field(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(UserError) as exc:
        load_config(Cfg, p)
    msg = str(exc.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(Cfg, tmp_path / "nope.yaml")


def test_bad_override():
    with pytest.raises(UserError, match="key.sub=value"):
        apply_overrides({}, ["justakey"])


def test_overrides_index_lists():
    data = apply_overrides({"data": [{"path": "a"}, {"path": "b"}]}, ["data.1.path=c"])
    assert data == {"data": [{"path": "a"}, {"path": "c"}]}
    with pytest.raises(UserError, match="not an index"):
        apply_overrides({"data": [{"path": "a"}]}, ["data.3.path=c"])
