"""``index.html``: one page linking the results table, the executed notebooks and the figures.

The page is self-contained HTML (no network, no JavaScript library); links are relative to the
page so the ``reports/`` folder can be zipped or opened from anywhere. A small inline script
counts the images that loaded (``#load-check``) so a headless browser can verify the page.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from vadlib.io import atomic_path

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0} .scroll{overflow-x:auto}
th,td{border-bottom:1px solid #e3e3e3;padding:.25em .55em;text-align:left;vertical-align:top}
th{border-bottom:2px solid #555;background:#fafafa} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.quoted td{color:#555;font-style:italic;background:#f6f6fb} tr.random td{background:#fff0f0}
.badge{display:inline-block;padding:0 .4em;border-radius:3px;font-size:.8em;font-style:normal}
.quoted-badge{background:#dde3f5;color:#223} .random-badge{background:#c62828;color:#fff}
.figs{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0;max-width:540px} figure img{max-width:100%;border:1px solid #eee}
td.col-method{min-width:16em} td.col-kind{white-space:nowrap} figcaption{font-size:.8em;color:#444} .note{color:#666;font-size:.9em} details pre{font-size:.75em;overflow:auto;max-height:30em}
"""

CHECK_JS = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var el = document.getElementById('load-check');
  el.setAttribute('data-images', String(imgs.length));
  el.setAttribute('data-images-ok', String(ok.length));
  el.setAttribute('data-images-broken', imgs.filter(function (i) { return ok.indexOf(i) < 0; })
      .map(function (i) { return i.getAttribute('src'); }).join(' '));
  el.setAttribute('data-tables', String(document.querySelectorAll('table.results').length));
});
"""

PERCENT_COLUMNS = ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "mauc", "map")


def rel(target: str | Path, page_dir: str | Path) -> str:
    """POSIX relative link from ``page_dir`` to ``target``."""
    return Path(os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())).as_posix()


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, float) and not float(v).is_integer():
        return f"{v:.2f}"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 1 else f"{v:g}"
    return html.escape(str(v))


def table_html(df: pd.DataFrame, columns: Sequence[str] | None = None, css_id: str = "results") -> str:
    """Results table as HTML; quoted rows get class ``quoted`` and a "quoted [tag]" badge,
    random-weight rows class ``random`` and a RANDOM WEIGHTS badge."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    out = [f'<table class="results" id="{css_id}"><thead><tr>'
           + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr></thead><tbody>"]
    for _, r in df.iterrows():
        quoted = r.get("kind", "measured") != "measured"
        random = r.get("real_weights") is False or (str(r.get("real_weights")) == "False")
        cls = "quoted" if quoted else ("random" if random else "measured")
        cells = []
        ranges = r.get("ranges") if isinstance(r.get("ranges"), dict) else {}
        for c in cols:
            v = r[c]
            text = html.escape(ranges[c]) if c in ranges and _cell(v) == "—" else _cell(v)
            if c == "kind" and quoted:
                text = f'<span class="badge quoted-badge">quoted {html.escape(str(r.get("source", "")))}</span>'
            elif c == "real_weights" and random:
                text = '<span class="badge random-badge">RANDOM WEIGHTS</span>'
            num = " num" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cells.append(f'<td class="col-{html.escape(str(c))}{num}">{text}</td>')
        out.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def find_notebooks(reports: str | Path, exclude: Iterable[str] = ("report",)) -> list[Path]:
    """Executed notebooks rendered as HTML: ``reports/<stage>/[<item>/]<stage>.html``."""
    reports = Path(reports)
    out = []
    for p in sorted(reports.glob("*/**/*.html")):
        parts = p.relative_to(reports).parts
        if parts[0] in set(exclude) or p.name == "index.html" or any(s.startswith(".") for s in parts):
            continue
        out.append(p)
    return out


def find_figures(root: str | Path) -> list[Path]:
    """PNG figures under ``root`` (each may have a PDF beside it), sorted by path."""
    return sorted(p for p in Path(root).glob("**/*.png") if not any(s.startswith(".") for s in p.parts))


def write_index(path: str | Path, table: pd.DataFrame, *, title: str = "vadlib results",
                notebooks: Sequence[Path] = (), figures: Sequence[Path] | Mapping[str, Sequence[Path]] = (),
                downloads: Sequence[Path] = (), environment: Mapping[str, Any] | None = None,
                skipped: Sequence[str] = (), notes: Sequence[str] = (), columns: Sequence[str] | None = None) -> Path:
    """Write the report page to ``path`` atomically and return it.

    ``figures`` is a list of PNG paths or ``{section title: [paths]}``; a PDF beside a PNG is
    linked as the vector version. ``downloads`` (CSV / Markdown / LaTeX of the table) are
    linked under the table. ``skipped`` lists what could not be made and why (shown on the page).
    """
    path = Path(path)
    page_dir = path.parent
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>",
             "<div id='load-check' hidden></div>"]
    if environment:
        g = environment.get("git") or {}
        commit = (g.get("commit") or "unknown")[:12] + (" (dirty: uncommitted changes)" if g.get("dirty") else "")
        parts.append(f"<p class='note'>git {esc(commit)} · generated {esc(str(environment.get('time_utc', '')))}"
                     " · <a href='#environment'>environment</a></p>")
    for n in notes:
        parts.append(f"<p class='note'>{esc(n)}</p>")
    parts.append("<h2 id='results'>Results</h2>")
    parts.append("<p class='note'>Metrics in %. Rows marked <span class='badge quoted-badge'>quoted</span> are "
                 "published figures copied from the cited source (not measured here; their GT file, split and "
                 "features may differ). Rows marked <span class='badge random-badge'>RANDOM WEIGHTS</span> check "
                 "the plumbing only.</p>")
    parts.append("<div class='scroll'>" + table_html(table, columns) + "</div>" if len(table) else "<p>No metrics.json found under the reports folder.</p>")
    if downloads:
        parts.append("<p>Download: " + " · ".join(f"<a href='{esc(rel(p, page_dir))}'>{esc(Path(p).name)}</a>"
                                                  for p in downloads) + "</p>")
    parts.append("<h2 id='notebooks'>Executed notebooks</h2>")
    if notebooks:
        parts.append("<ul>" + "".join(f"<li><a href='{esc(rel(p, page_dir))}'>{esc(rel(p, page_dir))}</a></li>"
                                      for p in notebooks) + "</ul>")
    else:
        parts.append("<p>No executed notebooks found.</p>")
    sections = figures if isinstance(figures, Mapping) else ({"Figures": figures} if figures else {})
    parts.append("<h2 id='figures'>Figures</h2>")
    if not any(sections.values()):
        parts.append("<p>No figures.</p>")
    for name, figs in sections.items():
        if not figs:
            continue
        parts.append(f"<h3>{esc(name)}</h3><div class='figs'>")
        for p in figs:
            p = Path(p)
            link = rel(p, page_dir)
            pdf = p.with_suffix(".pdf")
            pdf_link = f" · <a href='{esc(rel(pdf, page_dir))}'>PDF</a>" if pdf.exists() else ""
            parts.append(f"<figure><a href='{esc(link)}'><img src='{esc(link)}' alt='{esc(p.stem)}' loading='eager'></a>"
                         f"<figcaption>{esc(link)}{pdf_link}</figcaption></figure>")
        parts.append("</div>")
    if skipped:
        parts.append("<h2 id='skipped'>Not made</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in skipped) + "</ul>")
    if environment:
        pk = environment.get("packages") or {}
        dev = environment.get("device") or {}
        rows = [("python", environment.get("python")), ("platform", environment.get("platform")),
                ("git commit", (environment.get("git") or {}).get("commit")),
                ("git dirty", (environment.get("git") or {}).get("dirty")),
                ("CPU", f"{dev.get('cpu')} ({dev.get('cpu_count')} cores)"),
                ("GPU", ", ".join(dev.get("gpus") or []) or "none"),
                *[(k, v) for k, v in pk.items() if v]]
        parts.append("<h2 id='environment'>Environment</h2><table class='env'>"
                     + "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in rows) + "</table>")
        parts.append("<details><summary>params.yaml</summary><pre>"
                     + esc(json.dumps(environment.get("params"), indent=2, default=str)) + "</pre></details>")
    parts.append(f"<script>{CHECK_JS}</script></body></html>\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")
    return path
