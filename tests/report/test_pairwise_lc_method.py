"""The pairwise section shows how the LC win-rate was computed and where it deviates from AlpacaEval."""

from pathlib import Path

from definemed.report.load import Run
from definemed.report.models import ModelNames
from definemed.report.pairwise_section import pairwise_section
from definemed.report.summary import Findings


def _run(lc: dict) -> Run:
    pair = {"a": "m1", "b": "m2", "n": 3, "failed": 0, "wins": 2, "ties": 0, "losses": 1,
            "win_rate": {"mean": 0.67, "ci_low": 0.3, "ci_high": 1.0, "n": 3}, "lc_win_rate": lc}
    data = {"models": ["m1", "m2"], "judges": {"j": {"kind": "llm", "pairs": [pair]}}}
    return Run(path=Path("/tmp/run-x"), stage="eval", manifest={}, files={"pairwise.json": data})


def test_lc_method_and_deviations_are_rendered_escaped():
    lc = {"mean": 0.6, "ci_low": 0.4, "ci_high": 0.8, "n": 3, "length_coef": 0.5,
          "method": "AlpacaEval LC <GLM>", "deviations": ["no difficulty term", "length in words & <b>x</b>"]}
    run = _run(lc)
    html = "".join(pairwise_section([run], ModelNames([run]), Findings()))
    assert "LC method: AlpacaEval LC &lt;GLM&gt;. Deviations from AlpacaEval: no difficulty term; " \
           "length in words &amp; &lt;b&gt;x&lt;/b&gt;." in html
    assert "<b>x</b>" not in html


def test_old_results_without_method_render_without_the_line():
    run = _run({"mean": 0.6, "ci_low": 0.4, "ci_high": 0.8, "n": 3, "length_coef": 0.5})
    assert "LC method" not in "".join(pairwise_section([run], ModelNames([run]), Findings()))
