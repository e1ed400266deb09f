"""The error printer and every console line with user text: never parsed as rich markup (issue #12).

A path like ``cfg/[/x].yaml`` crashed the very handler meant to prevent tracebacks, and ``[bold]``
or ``[red]`` in a path or a config value vanished from the message."""

import io

import pytest
from rich.console import Console

from ._runs import assert_one_line_error, cli, corpus_config, write_yaml

MARKUP_NAMES = ["[/x]", "[bold]", "[red]x[/red]"]


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_missing_config_path_with_markup_is_printed_verbatim(tmp_path, name):
    path = tmp_path / f"cfg{name}.yaml"
    res = cli("corpus", "run", path)
    assert_one_line_error(res, str(path))


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_config_value_with_markup_is_printed_verbatim(tmp_path, name):
    """A field value (here the tokenizer) that names a missing folder, through the real stage."""
    value = str(tmp_path / f"tok{name}")
    cfg = write_yaml(tmp_path / "c.yaml", corpus_config(tmp_path / "out", tokenizer=value))
    res = cli("corpus", "run", cfg)
    assert_one_line_error(res, value)


def test_output_dir_with_markup_in_the_busy_message(tmp_path):
    from ._runs import hold_lock

    out = tmp_path / "[bold]run[/]"
    holder = hold_lock(out)
    try:
        res = cli("corpus", "run", write_yaml(tmp_path / "c.yaml", corpus_config(out)))
        assert_one_line_error(res, str(out), "in use")
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def recorded(monkeypatch):
    """The shared consoles, recording plain text."""
    import definemed.console as c

    buf = io.StringIO()
    fake = Console(file=buf, width=300, color_system=None, force_terminal=False)
    monkeypatch.setattr(c, "console", fake)
    monkeypatch.setattr(c, "out", fake)
    return buf


@pytest.mark.parametrize("label", ["[/x] model", "[bold]model", "[red]m[/red]"])
def test_progress_description_is_not_markup(recorded, label):
    from definemed.console import progress_bar

    with progress_bar(f"generate {label}", total=1) as advance:
        advance(1)
    assert f"generate {label}" in recorded.getvalue()


def test_already_finished_line_keeps_the_path(tmp_path, recorded):
    from definemed.runs import RunDir

    path = tmp_path / "[bold]run[/x]"
    RunDir(path, "corpus").start({"a": 1}).finish({"m": 1})
    assert RunDir(path, "corpus").reuse({"a": 1}) == {"m": 1}
    assert f"corpus run {path} already finished" in recorded.getvalue()


def test_train_summary_table_keeps_heldout_names(recorded, monkeypatch):
    import definemed.console as c
    import definemed.train.summary as summary
    from definemed.train.summary import print_train_summary

    monkeypatch.setattr(summary, "out", c.out)

    print_train_summary({"steps": 2, "tokens": 10, "heldout_ppl_start": {"[bold]med[/]": 10.0},
                         "heldout_ppl_end": {"[bold]med[/]": 9.0}, "final_loss": 1.0})
    assert "[bold]med[/]" in recorded.getvalue()
