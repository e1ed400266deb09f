"""Helpers of tests/faults/test_configs.py: the CLI in-process, YAML writers, a tiny model folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jsonl", "chat_template.jinja",
                   "generation_config.json", "special_tokens_map.json")


def cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """`definemed.cli.main` with these arguments in this process: (exit code, stdout, stderr)."""
    from definemed.cli import main

    monkeypatch.setattr(sys, "argv", ["definemed", *map(str, args)])
    monkeypatch.chdir(ROOT)  # stage configs named relative to the checkout (configs/demo-*.yaml)
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    res = capsys.readouterr()
    return code, res.out, res.err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback, every needle in that line."""
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def pipeline_yaml(tmp_path: Path, **fields) -> Path:
    """A pipeline config of the eval stage only (no stage configs), with `fields` on top."""
    data = {"output_dir": str(tmp_path / "runs"), "stages": ["eval"], "corpus_config": None,
            "train_config": None, "merge_config": None, **fields}
    return write_yaml(tmp_path / "pipeline.yaml", data)


def save_tiny_model(bundled: Path, out: Path) -> Path:
    """A 2-layer random model with the real SmolLM2 config and tokenizer (fast to run)."""
    from definemed.models import random_init_like

    random_init_like(bundled, num_hidden_layers=2, seed=0).save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (bundled / name).exists():
            shutil.copy2(bundled / name, out / name)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(bundled_model_path, tmp_path_factory):
    return save_tiny_model(bundled_model_path, tmp_path_factory.mktemp("tiny-configs"))
