"""The HTML report: run directories in, one self-contained HTML file out (`build.build_report`).

Modules: `load` (reading run directories), `models` (display names and colours), `html`
(escaping, tables, page), `plots` (inline SVG), one module per group of sections
(`mcq_section`, `pairwise_section`, `failures_section`, `stage_sections`), `summary` (the
"which model is better on what" list) and `build` (assembling and writing the page).
"""
