"""CLI glue for `definemed merge run CONFIG [--set key=value ...]` (the typer command calls this)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape


def merge_run(config_path: Path, overrides: list[str]) -> None:
    """Load and validate the config, run the merge sweep, print the table."""
    from definemed.config import load_config
    from definemed.merge.config import MergeConfig
    from definemed.merge.run import run_merge
    from definemed.merge.summary import print_sweep

    cfg = load_config(MergeConfig, config_path, overrides or None)
    print_sweep(run_merge(cfg), cfg.output_dir)


def merge_validate(config_path: Path, overrides: list[str] | None = None) -> None:
    """Check a merge config without running it (e.g. the paper's 7B config on a laptop)."""
    from definemed.config import load_config
    from definemed.console import out
    from definemed.merge.config import MergeConfig

    cfg = load_config(MergeConfig, config_path, overrides or None)
    what = "raw mergekit config" if cfg.mergekit is not None else \
        f"{cfg.method}, t = {', '.join(f'{t:g}' for t in cfg.points())}, {cfg.dtype}"
    out.print(f"[green]ok[/]: {escape(str(config_path))} ({escape(what)})")
