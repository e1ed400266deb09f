"""`definemed report`: escaping of untrusted answers, missing sections, no external resources,
the CLI (real subprocesses) and its one-line errors."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import pytest

from definemed.errors import UserError
from definemed.report.build import build_report, render_report
from definemed.report.load import load_runs

from conftest import run_cli


@pytest.fixture(scope="module")
def full_html(report_runs):
    r = report_runs
    return render_report(load_runs([r["main"], r["biased"], r["train"], r["merge"], r["corpus"]]), "Test <report>")


class Resources(HTMLParser):
    """Every tag name and every attribute that can load something."""

    LOADING = {"src", "href", "xlink:href", "srcset", "data", "action", "poster", "background"}

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in self.LOADING and value is not None:
                self.refs.append(value)
            if name == "style" and value:
                self.styles.append(value)
            if name.startswith("on"):
                self.refs.append(f"event handler {name}")

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def test_untrusted_answer_text_is_escaped(full_html):
    # the answer's markup appears as text, never as markup
    assert html.escape('<script>alert("xss")</script>', quote=True) in full_html
    assert "<script" not in full_html.lower()
    assert not re.search(r"<img\b", full_html, re.IGNORECASE)
    assert "&lt;img src=&quot;https://example.com/track.png&quot; onerror=&quot;alert(1)&quot;&gt;" in full_html
    assert "<|im_end|>" not in full_html and "&lt;|im_end|&gt;" in full_html
    assert "Test &lt;report&gt;" in full_html and "Test <report>" not in full_html


def test_no_external_resources(full_html):
    p = Resources()
    p.feed(full_html)
    assert not {"script", "link", "iframe", "object", "embed", "img"} & set(p.tags)
    for ref in p.refs:  # in-page anchors and inline data only
        assert ref.startswith(("#", "data:")), ref
    for css in p.styles:
        assert not re.search(r"url\(|@import|https?:", css, re.IGNORECASE), css
    assert "Content-Security-Policy" in full_html and "default-src 'none'" in full_html
    # URLs inside answers are text, not links
    assert "https://evil.example.org/page" in full_html and 'href="https://evil' not in full_html


def test_full_report_has_every_section(full_html):
    for anchor in ("summary", "models", "mcq", "perplexity", "pairwise", "failures", "examples", "train", "merge",
                   "corpus", "configs"):
        assert f'<section id="{anchor}">' in full_html, anchor
    assert full_html.count("<svg") >= 10
    assert "Bradley–Terry ranking" in full_html
    assert "Weak judge" in full_html  # the always-"A" judge of eval-biased
    assert "position consistency" in full_html.lower()
    # the same labels in two eval runs' pairwise results are told apart by run name
    assert "referenz (eval-main)" in full_html and "referenz (eval-biased)" in full_html
    assert full_html.count("<details>") >= 5  # one config.yaml per run, and more
    assert "Mixed-language answers" in full_html and "Longest answers per model" in full_html


def test_missing_sections_are_skipped_with_a_note(report_runs, tmp_path):
    out = render_report(load_runs([report_runs["biased"]]))
    assert '<section id="pairwise">' in out
    for anchor in ("mcq", "failures", "train", "merge", "corpus"):
        assert f'<section id="{anchor}">' not in out
    assert "Not in this report" in out and "eval mcq" in out and "eval failures" in out

    # an eval run with nothing in it yet, and one with a corrupt result file
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.json").write_text(json.dumps({"stage": "eval", "status": "running"}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps({"stage": "eval", "status": "finished"}))
    (broken / "mcq.json").write_text("{not json")
    out = render_report(load_runs([empty, broken]))
    assert "No comparable numbers" in out and "mcq.json: unreadable" in out
    assert '<section id="configs">' in out


@pytest.mark.parametrize("make,needle", [
    (lambda t: t / "missing", "run directory not found"),
    (lambda t: (t / "plain").mkdir() or t / "plain", "not a run directory (no manifest.json)"),
    (lambda t: (t / "f.txt").write_text("x") and t / "f.txt", "not a directory"),
    (lambda t: (t / "odd").mkdir() or (t / "odd" / "manifest.json").write_text('{"stage": "zzz"}') and t / "odd",
     "field 'stage' must be one of"),
])
def test_bad_run_dir_is_a_user_error(tmp_path, make, needle):
    with pytest.raises(UserError, match=re.escape(needle)):
        build_report([make(tmp_path)], tmp_path / "r.html")


def assert_one_line_error(res, needle):
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr


def test_cli_bad_dirs(tmp_path, report_runs):
    out = tmp_path / "r.html"
    assert_one_line_error(run_cli("report", tmp_path / "nope", "-o", out), "run directory not found")
    (tmp_path / "plain").mkdir()
    assert_one_line_error(run_cli("report", report_runs["main"], tmp_path / "plain", "-o", out), "not a run directory")
    assert_one_line_error(run_cli("report", report_runs["main"], "-o", tmp_path), "is a directory")
    assert not out.exists()


def test_cli_writes_the_report(tmp_path, report_runs):
    out = tmp_path / "sub" / "report.html"
    res = run_cli("report", report_runs["main"], report_runs["train"], "-o", out, "--title", "Vergleich")
    assert res.returncode == 0, res.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<title>Vergleich</title>" in text
    assert '<section id="train">' in text and '<section id="merge">' not in text
    assert not list(out.parent.glob(".report.html.*"))  # atomic write left no temp file
