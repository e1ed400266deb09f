"""The report rendered in headless Chromium: plots and tables are there, nothing is loaded from
outside the file, and the DevTools console shows no errors.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe``
(`tests/report/cdp.py`, standard library only), which reports uncaught exceptions,
console.error calls and browser log errors (failed loads, Content-Security-Policy violations)
as they happen — more than a ``window.onerror`` hook injected into the page could see. A page
with deliberate errors checks that the harness really catches them. `make setup` / `make test`
install Chromium with apt-get where it can; without it this test is skipped.
"""

from __future__ import annotations

import pytest

from definemed.report.build import build_report

from .cdp import Chromium, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed: `make setup` installs it with "
                                "apt-get (Debian/Ubuntu, as root or with password-less sudo)")

DOM_FACTS = """(() => {
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 50 && r.height > 50; };
  return {
    svgs: document.querySelectorAll('figure svg').length,
    visibleSvgs: [...document.querySelectorAll('figure svg')].filter(visible).length,
    tables: document.querySelectorAll('table').length,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    headers: [...document.querySelectorAll('th')].map(th => th.innerText.trim()),
    warnings: [...document.querySelectorAll('.callout.warn')].map(p => p.innerText),
    scripts: document.scripts.length,
    images: document.images.length,
    text: document.body.innerText,
  };
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(CHROMIUM, str(tmp_path_factory.mktemp("chromium-profile")))
    yield chromium
    chromium.close()


def test_harness_catches_console_errors(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p>"
                   "<script>console.error('boom'); notDefined();</script></body></html>")
    res = browser.load(bad.as_uri())
    assert any("boom" in e for e in res["console"]), res
    assert any("notDefined" in e for e in res["console"]), res


def test_report_in_headless_chromium(browser, report_runs, tmp_path):
    r = report_runs
    out = build_report([r["main"], r["biased"], r["train"], r["merge"], r["corpus"]], tmp_path / "report.html")
    res = browser.load(out.as_uri())
    assert res["console"] == []
    # only the file itself and inline data (e.g. the colour bar image inside an SVG) are loaded
    assert [u for u in res["requests"] if not u.startswith(("file://", "data:"))] == []

    facts = browser.evaluate(res["session"], DOM_FACTS)
    assert facts["scripts"] == 0 and facts["images"] == 0
    assert facts["svgs"] >= 10 and facts["visibleSvgs"] == facts["svgs"]
    assert facts["tables"] >= 10
    assert facts["sections"] == ["summary", "models", "mcq", "perplexity", "pairwise", "failures", "examples",
                                 "train", "merge", "corpus", "configs"]
    for header in ("acc", "acc_norm", "win-rate of A", "LC win-rate of A", "position consistency",
                   "score (log-strength)", "medical perplexity ↓"):
        assert header in facts["headers"], header
    assert any("Weak judge" in w for w in facts["warnings"])
    # the untrusted answer is shown as text
    assert '<script>alert("xss")</script>' in facts["text"]
