"""The models compared in a report: their display names and colours, shared by every section.

Within one eval run a model is known by its label (``mcq.json``, ``answers/<label>.jsonl``,
``pairwise.json``, ``failures.json`` all use it). With several eval runs the same label can
mean different results (other data, other settings), so a label that appears in the same kind
of result in more than one run is shown as ``label (run name)``. Every display name gets one
colour, used in all tables and plots.
"""

from __future__ import annotations

from collections import defaultdict

from definemed.report.html import Html, model_cell, table
from definemed.report.load import Run
from definemed.report.plots import colors_for


def labels_in(run: Run) -> dict[str, list[str]]:
    """Model labels per kind of result in an eval run, in file order."""
    out: dict[str, list[str]] = {}
    mcq = run.files.get("mcq.json", {}).get("models")
    if isinstance(mcq, dict):
        out["mcq"] = list(mcq)
    pw = run.files.get("pairwise.json", {}).get("models")
    if isinstance(pw, list):
        out["pairwise"] = [str(x) for x in pw]
    fail = run.files.get("failures.json", {}).get("models")
    if isinstance(fail, dict):
        out["failures"] = list(fail)
    if run.answers:
        out["answers"] = list(run.answers)
    return out


class ModelNames:
    def __init__(self, runs: list[Run]):
        self.evals = [r for r in runs if r.stage == "eval"]
        seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        order: list[tuple[str, str]] = []
        for run in self.evals:
            for kind, labels in labels_in(run).items():
                for label in labels:
                    seen[(kind, label)].add(run.name)
                    order.append((run.name, label))
        self._ambiguous = {label for (_, label), names in seen.items() if len(names) > 1}
        self.colors = colors_for([self.name(run, label) for run, label in order])

    def name(self, run: Run | str, label: str) -> str:
        run_name = run if isinstance(run, str) else run.name
        return f"{label} ({run_name})" if label in self._ambiguous else label

    def color(self, name: str) -> str:
        return self.colors.get(name, "#888888")

    def cell(self, name: str) -> Html:
        return model_cell(name, self.color(name))

    def overview(self) -> Html:
        """Table: model, where its results come from, the checkpoint or server it refers to."""
        rows: dict[str, dict] = {}
        for run in self.evals:
            refs = {}
            for label, r in run.files.get("mcq.json", {}).get("models", {}).items():
                if isinstance(r, dict) and r.get("model_ref"):
                    refs[label] = r["model_ref"]
            for label, answers in run.answers.items():
                if answers and answers[0].get("model_ref"):
                    refs.setdefault(label, answers[0]["model_ref"])
            for kind, labels in labels_in(run).items():
                for label in labels:
                    row = rows.setdefault(self.name(run, label), {"kinds": [], "ref": None, "runs": set()})
                    row["kinds"].append(kind)
                    row["runs"].add(run.name)
                    row["ref"] = row["ref"] or refs.get(label)
        body = [[self.cell(n), ", ".join(sorted(set(r["kinds"]))), ", ".join(sorted(r["runs"])), r["ref"] or "–"]
                for n, r in rows.items()]
        return table(["model", "results", "eval run", "checkpoint / served model"], body)
