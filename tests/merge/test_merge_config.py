"""Merge configs: the shipped YAML files validate, mistakes are one-line errors, and every method
becomes a valid mergekit config that survives the mergekit.yaml round trip. No models loaded."""

from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from definemed.config import load_config, validate_config
from definemed.errors import UserError
from definemed.merge import mergekit_config as mkc
from definemed.merge.config import MergeConfig, point_label

MODELS = {"instruct": Path("/m/instruct"), "cpt": Path("/m/cpt"), "base": Path("/m/base")}


def cfg(**changes) -> MergeConfig:
    data = {"models": {"cpt": "/m/cpt", "instruct": "/m/instruct"}, "sweep": [0.3, 0.5, 0.7],
            "eval": {"enabled": False}, **changes}
    return validate_config(MergeConfig, data, "test")


@pytest.mark.parametrize("path", ["configs/demo-merge.yaml", "configs/paper/merge-qwen2.5-7b-slerp.yaml"])
def test_shipped_configs_validate(path):
    c = load_config(MergeConfig, ROOT / path)
    assert c.method == "slerp" and c.points() == [0.3, 0.5, 0.7]
    assert [point_label(t) for t in c.points()] == ["t0.3", "t0.5", "t0.7"]


def test_demo_config_names_the_demo_models():
    c = load_config(MergeConfig, ROOT / "configs/demo-merge.yaml")
    assert c.models.cpt == "runs/demo/train/final" and c.models.instruct == "smollm2-135m-instruct"
    paper = load_config(MergeConfig, ROOT / "configs/paper/merge-qwen2.5-7b-slerp.yaml")
    assert paper.models.instruct == "Qwen/Qwen2.5-7B-Instruct" and paper.dtype == "bfloat16"


@pytest.mark.parametrize("changes,needle", [
    ({"method": "ties"}, "needs models.base"),
    ({"models": {"cpt": "a", "instruct": "b", "base": "c"}}, "only used by"),
    ({"sweep": [], "parameters": {}}, "give sweep"),
    ({"parameters": {"t": 0.5}}, "not both"),
    ({"sweep": [0.5, 1.5]}, "outside [0, 1]"),
    ({"sweep": [0.5, 0.5]}, "repeated"),
    ({"parameters": {"density": 0.5}}, "density is for"),
    ({"dtype": "int8"}, "field 'dtype'"),
    ({"method": "frankenmerge"}, "field 'method'"),
    ({"mergekit": {"merge_method": "linear"}, "sweep": [0.5]}, "cannot be combined with sweep"),
    ({"models": None}, "models (cpt, instruct) is required"),
    ({"tokenizer": "x"}, "unknown field"),
    # the sweep's data comes from the config, never silently from the sample
    ({"eval": {"docs": 4}}, "needs eval.heldout and eval.instructions_data"),
    ({"eval": {"heldout": {"path": "x.parquet"}}}, "needs eval.instructions_data"),
])
def test_config_mistakes_are_one_line_errors(changes, needle):
    with pytest.raises(UserError) as err:
        cfg(**changes)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_single_point_without_sweep():
    assert cfg(sweep=[], parameters={"t": 0.4}).points() == [0.4]
    ties = cfg(method="ties", sweep=[], parameters={"weight": 0.6},
               models={"cpt": "a", "instruct": "b", "base": "c"})
    assert ties.points() == [0.6] and ties.density() == 0.5


@pytest.mark.parametrize("method", ["slerp", "linear", "ties", "dare_ties", "task_arithmetic"])
def test_every_method_builds_a_valid_mergekit_config(method, tmp_path):
    from mergekit.config import MergeConfiguration

    extra = {"models": {"cpt": "/m/cpt", "instruct": "/m/instruct", "base": "/m/base"}} \
        if method in ("ties", "dare_ties", "task_arithmetic") else {}
    c = cfg(method=method, **extra)
    data = mkc.build(c, MODELS, 0.7)
    parsed = mkc.to_configuration(data)
    assert parsed.merge_method == method and parsed.dtype == "float32"
    # mergekit.yaml is what `mergekit-yaml` reads: the round trip gives the same configuration
    assert MergeConfiguration.model_validate(yaml.safe_load(mkc.to_yaml(data))) == parsed
    # the instruct parent is mergekit's base model (slerp: t = 0; linear: the config/tokenizer donor)
    if method in ("slerp", "linear"):
        assert data["base_model"] == "/m/instruct"
    else:
        assert data["base_model"] == "/m/base"
    if method == "slerp":
        assert data["parameters"] == {"t": 0.7}
    else:  # t is the CPT model's share; 1 - 0.7 written without float noise
        weights = {m["model"]: m["parameters"]["weight"] for m in data["models"]}
        assert weights == {"/m/instruct": 0.3, "/m/cpt": 0.7}
    if method in ("ties", "dare_ties"):
        assert all(m["parameters"]["density"] == 0.5 for m in data["models"])


def test_invalid_raw_mergekit_config_is_one_line_error():
    with pytest.raises(UserError, match="mergekit config"):
        mkc.to_configuration({"merge_method": "linear"})  # no models
