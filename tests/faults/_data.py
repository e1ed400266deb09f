"""Shared pieces of the data/model fault tests: the CLI run in-process through `definemed.cli.main`
(its UserError handler included), and a tiny real checkpoint folder to break in different ways."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """Run `definemed *args` in this process as the console script does: (exit code, stdout, stderr)."""
    from definemed.cli import main

    monkeypatch.setattr(sys, "argv", ["definemed", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    res = capsys.readouterr()
    return code, res.out, res.err


def one_line_error(capsys, monkeypatch, *args, status_prefix: str | tuple[str, ...] | None = None) -> str:
    """The command must exit 2 with exactly one line on stderr and no traceback; returns that line.
    ``status_prefix``: progress lines the command prints before it fails (e.g. the merge's "merge 1/3
    pre-checks") are not part of the error and are left out."""
    code, out, err = cli(capsys, monkeypatch, *args)
    assert "Traceback" not in err + out, err
    lines = [line for line in err.strip().splitlines()
             if line.strip() and not (status_prefix and line.startswith(status_prefix))]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    return lines[0]


def save_tiny_model(bundled: Path, out: Path) -> Path:
    """A tiny random Llama (hidden 64, 2 layers) with the bundled tokenizer, as safetensors."""
    from tiny_models import tiny_causal_lm

    model = tiny_causal_lm("llama", "eager", vocab_size=49152, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (bundled / name).exists():
            shutil.copy2(bundled / name, out / name)
    return out


def copy_model(src: Path, out: Path, skip: tuple[str, ...] = ()) -> Path:
    out.mkdir(parents=True)
    for f in src.iterdir():
        if f.name not in skip:
            shutil.copy2(f, out / f.name)
    return out


@pytest.fixture(scope="module")
def tiny_model(bundled_model_path, tmp_path_factory):
    return save_tiny_model(bundled_model_path, tmp_path_factory.mktemp("faults-model") / "good")
