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
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em;margin:1.2em 0 .3em} h4{font-size:.95em;margin:.8em 0 .3em;color:#333}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0} .scroll{overflow-x:auto}
th,td{border-bottom:1px solid #e3e3e3;padding:.25em .5em;text-align:left;vertical-align:top}
th{border-bottom:2px solid #555;background:#fafafa;white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.quoted td{color:#555;font-style:italic;background:#f6f6fb} tr.random td{background:#fff0f0}
.badge{display:inline-block;padding:0 .4em;border-radius:3px;font-size:.8em;font-style:normal;white-space:nowrap}
.quoted-badge{background:#dde3f5;color:#223} .random-badge{background:#c62828;color:#fff} .real-badge{background:#e3f1e3;color:#1b4d1b}
.banner{border:2px solid #c62828;background:#fff0f0;padding:.5em .8em;border-radius:4px}
.columns{font-size:.85em;color:#444;margin:.4em 0} .columns label{margin-right:.9em;white-space:nowrap}
.figs{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start} figure{margin:0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
td.col-method{min-width:11em} td.col-note{min-width:16em;max-width:26em} td.col-kind{white-space:nowrap}
figcaption{font-size:.8em;color:#444} .note{color:#666;font-size:.9em} details pre{font-size:.75em;overflow:auto;max-height:30em}
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
  el.setAttribute('data-rows', String(document.querySelectorAll('table.results tbody tr').length));
});
document.querySelectorAll('.columns input').forEach(function (box) {
  box.addEventListener('change', function () { document.body.classList.toggle('hide-' + box.value, !box.checked); });
});
"""

PERCENT_COLUMNS = ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "mauc", "map")

# The table's columns in page order; the reader picks which show (the protocol ones start hidden so
# the table fits a 1400-px window; every column is in the downloads).
COLUMNS = ("stage", "method", "dataset", "setting", *PERCENT_COLUMNS, "sigma", "ap_definition", "gt_file",
           "backbone", "real_weights", "source", "note")
HIDDEN = ("stage", "ap_definition", "gt_file")
HEADERS = {"stage": "stage", "method": "method", "dataset": "dataset", "setting": "setting", "micro_auc": "µAUC",
           "macro_auc": "MAUC", "micro_ap": "µAP", "macro_ap": "MAP", "mauc": "mAUC", "map": "mAP", "sigma": "σ",
           "ap_definition": "AP definition", "gt_file": "GT file", "backbone": "backbone",
           "real_weights": "weights", "source": "source", "note": "note"}
# (block, heading, explanation): measured demo rows, measured real-data rows and quoted rows never mix.
BLOCKS = (
    ("demo", "Measured here — generated demo data",
     "The demo benchmark (data/demo): generated scenes with planted anomalies. These numbers check that the "
     "pipeline runs end to end; they say nothing about the methods on real footage."),
    ("real", "Measured here — real benchmark data",
     "Results on a real dataset, with the protocol (GT file, σ, AP definition) in the columns you can add above."),
    ("quoted", "Quoted from published work — not measured here",
     "Copied from the cited source (tags: [repo] official repository, [page] project page, [sec] secondary "
     "compilation, [notes] research notes, [unverified] not checked); GT file, split and features may differ."),
)


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


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())


def is_random(row: Mapping) -> bool:
    """A row whose backbone had random weights (``real_weights`` False)."""
    v = row.get("real_weights")
    return v is False or str(v) == "False"


def data_block(row: Mapping) -> str:
    """``"quoted"`` (published), ``"demo"`` (every dataset of the row is a generated ``demo*`` one,
    e.g. ``demo_a`` or ``demo_a→demo_b``) or ``"real"`` (measured on a real benchmark)."""
    if row.get("kind", "measured") != "measured":
        return "quoted"
    parts = [p.strip() for p in str(row.get("dataset") or "").replace("->", "→").split("→")]
    return "demo" if parts and all(p.startswith("demo") for p in parts) else "real"


def table_html(df: pd.DataFrame, columns: Sequence[str] | None = None, css_id: str = "results",
               reports: str | Path | None = None, page_dir: str | Path | None = None) -> str:
    """Results table as HTML; quoted rows get class ``quoted`` and a "quoted [tag]" badge,
    random-weight rows class ``random`` and a RANDOM WEIGHTS badge beside the method (always
    visible) and in the weights column. Columns empty in every row are left out; each cell has
    the class ``col-<name>`` (the page's column chooser hides them by class). With ``reports``
    and ``page_dir``, a measured row's source links to its metrics file."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    cols = [c for c in cols if c == "method" or not all(_empty(v) for v in df[c])]
    out = [f'<table class="results" id="{html.escape(css_id)}"><thead><tr>'
           + "".join(f'<th class="col-{html.escape(c)}">{html.escape(HEADERS.get(c, c))}</th>' for c in cols)
           + "</tr></thead><tbody>"]
    for _, r in df.iterrows():
        quoted = r.get("kind", "measured") != "measured"
        random = is_random(r)
        cls = "quoted" if quoted else ("random" if random else "measured")
        cells = []
        ranges = r.get("ranges") if isinstance(r.get("ranges"), dict) else {}
        for c in cols:
            v = r[c]
            text = html.escape(ranges[c]) if c in ranges and _cell(v) == "—" else _cell(v)
            if isinstance(r.get("spread"), dict) and c in r["spread"] and _cell(v) != "—":   # mean ± std (n seeds)
                std, n = r["spread"][c]
                text = f"{float(v):.2f} ± {float(std):.2f} ({int(n)})"
            if c == "kind" and quoted:
                text = f'<span class="badge quoted-badge">quoted {html.escape(str(r.get("source", "")))}</span>'
            elif c == "method" and random:
                text += ' <span class="badge random-badge">RANDOM WEIGHTS</span>'
            elif c == "real_weights":   # n/a: no pretrained backbone (e.g. optical flow)
                no_backbone = str(r.get("backbone") or "").startswith("none")
                text = ('<span class="badge random-badge">RANDOM</span>' if random else
                        "—" if quoted else "n/a" if no_backbone or str(v) != "True" else
                        '<span class="badge real-badge">real</span>')
            elif c == "source" and quoted:
                text = f'<span class="badge quoted-badge">quoted {html.escape(str(v))}</span>'
            elif c == "source" and reports is not None and page_dir is not None and not _empty(v):
                target = Path(reports) / str(v)
                label = html.escape(str(Path(str(v)).parent.as_posix()))
                text = f"<a href='{html.escape(rel(target, page_dir))}'>{label}</a>" if target.exists() else text
            num = " num" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cells.append(f'<td class="col-{html.escape(str(c))}{num}">{text}</td>')
        out.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _display_width(png: Path, scale: float = 1.3) -> int | None:
    """CSS pixels to show a PNG at ``scale`` × its physical size (from its DPI), e.g. a 7-inch
    figure at 840 px; ``None`` when unknown. Keeps big multi-panel figures legible and small
    single-column ones from being blown up."""
    try:
        from PIL import Image

        with Image.open(png) as im:
            dpi = im.info.get("dpi", (None,))[0]
            width = im.width
    except Exception:
        return None
    if not dpi:
        return None
    return int(round(width / float(dpi) * 96 * scale))


def _figure_is_random(png: Path) -> bool:
    """Whether the stage output beside ``png`` (its ``metrics.json``, one or two folders up) was made
    with random weights."""
    for d in (png.parent, png.parent.parent):
        m = d / "metrics.json"
        if m.is_file():
            try:
                data = json.loads(m.read_text())
            except (OSError, ValueError):
                return False
            proto = data.get("protocol") if isinstance(data.get("protocol"), dict) else {}
            return data.get("real_weights", proto.get("real_weights")) is False
    return False


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
                skipped: Sequence[str] = (), notes: Sequence[str] = (), columns: Sequence[str] | None = None,
                reports: str | Path | None = None, hidden: Sequence[str] = HIDDEN) -> Path:
    """Write the report page to ``path`` atomically and return it.

    The table is shown in blocks (:data:`BLOCKS`: measured on demo data, measured on real data,
    quoted), with a column chooser (``hidden`` columns start unticked). ``figures`` is a list of
    PNG paths or ``{section title: [paths]}``; a PDF beside a PNG is linked as the vector version,
    a PNG whose bytes were already shown is not shown again, and each is displayed at its
    physical size (from its DPI). ``downloads`` (CSV / Markdown / LaTeX of the table) are linked
    under the table. ``skipped`` lists what could not be made and why (shown on the page).
    ``reports`` (the reports folder) lets measured rows link to their metrics files.
    """
    import hashlib

    path = Path(path)
    page_dir = path.parent
    esc = html.escape
    cols = [c for c in (columns or COLUMNS) if c in table.columns and c != "kind"]
    hide = [c for c in hidden if c in cols]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}"
             + "".join(f".hide-{esc(c)} .col-{esc(c)}{{display:none}}" for c in cols) + "</style></head>",
             f"<body class='{' '.join('hide-' + esc(c) for c in hide)}'><h1>{esc(title)}</h1>",
             "<div id='load-check' hidden></div>"]
    if environment:
        g = environment.get("git") or {}
        commit = (g.get("commit") or "unknown")[:12] + (" (dirty: uncommitted changes)" if g.get("dirty") else "")
        parts.append(f"<p class='note'>git {esc(commit)} · <a href='#environment'>environment</a></p>")
    for n in notes:
        parts.append(f"<p class='note'>{esc(n)}</p>")
    rows = [r for _, r in table.iterrows()]
    n_random = sum(1 for r in rows if data_block(r) != "quoted" and is_random(r))
    if n_random:
        parts.append(f"<p class='banner' id='random-banner'><span class='badge random-badge'>RANDOM WEIGHTS</span> "
                     f"{n_random} measured row(s) and the figures stamped so come from a random-weight backbone "
                     "(the offline demo): they check the plumbing, not the methods.</p>")
    parts.append("<h2 id='results'>Results</h2>")
    parts.append("<p class='note'>Metrics in %. µAUC / MAUC: micro / macro frame ROC AUC; µAP / MAP: micro / "
                 "macro AP; mAUC / mAP: class recognition; σ: Gaussian smoothing (frames).</p>")
    if len(table):
        parts.append("<div class='columns'>Columns: " + "".join(
            f"<label><input type='checkbox' value='{esc(c)}'{'' if c in hide else ' checked'}> "
            f"{esc(HEADERS.get(c, c))}</label>" for c in cols if c != "method") + "</div>")
        blocks = {b: [] for b, _, _ in BLOCKS}
        for i, r in zip(table.index, rows):
            blocks[data_block(r)].append(i)
        for block, heading, text in BLOCKS:
            if not blocks[block]:
                continue
            parts.append(f"<h3 id='results-{block}'>{esc(heading)}</h3><p class='note'>{esc(text)}</p>")
            parts.append("<div class='scroll'>" + table_html(table.loc[blocks[block]], cols, css_id=f"results-table-{block}",
                                                          reports=reports, page_dir=page_dir) + "</div>")
    else:
        parts.append("<p>No metrics.json found under the reports folder.</p>")
    if downloads:
        parts.append("<p>Download (every column): " + " · ".join(
            f"<a href='{esc(rel(p, page_dir))}'>{esc(Path(p).name)}</a>" for p in downloads) + "</p>")
    sections = figures if isinstance(figures, Mapping) else ({"Figures": figures} if figures else {})
    parts.append("<h2 id='figures'>Figures</h2>")
    seen: set[str] = set()
    shown = 0
    for name, figs in sections.items():
        items = []
        for p in figs:
            p = Path(p)
            digest = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else str(p)
            if digest in seen:          # the same image under another name (e.g. a stage's copy)
                continue
            seen.add(digest)
            link = rel(p, page_dir)
            pdf = p.with_suffix(".pdf")
            pdf_link = f" · <a href='{esc(rel(pdf, page_dir))}'>PDF</a>" if pdf.exists() else ""
            badge = " <span class='badge random-badge'>RANDOM WEIGHTS</span>" if _figure_is_random(p) else ""
            width = _display_width(p)
            style = f" style='width:{width}px'" if width else ""
            items.append(f"<figure{style}><a href='{esc(link)}'><img src='{esc(link)}' alt='{esc(p.stem)}' "
                         f"loading='eager'></a><figcaption>{esc(link)}{pdf_link}{badge}</figcaption></figure>")
        if items:
            shown += len(items)
            parts.append(f"<h3>{esc(name)}</h3><div class='figs'>" + "".join(items) + "</div>")
    if not shown:
        parts.append("<p>No figures.</p>")
    if skipped:
        parts.append("<h2 id='skipped'>Not made</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in skipped) + "</ul>")
    parts.append("<h2 id='notebooks'>Executed notebooks</h2>")
    if notebooks:
        parts.append("<ul>" + "".join(f"<li><a href='{esc(rel(p, page_dir))}'>{esc(rel(p, page_dir))}</a></li>"
                                      for p in notebooks) + "</ul>")
    else:
        parts.append("<p>No executed notebooks found.</p>")
    if environment:
        pk = environment.get("packages") or {}
        dev = environment.get("device") or {}
        env_rows = [("python", environment.get("python")), ("platform", environment.get("platform")),
                    ("git commit", (environment.get("git") or {}).get("commit")),
                    ("git dirty", (environment.get("git") or {}).get("dirty")),
                    ("CPU", f"{dev.get('cpu')} ({dev.get('cpu_count')} cores)"),
                    ("GPU", ", ".join(dev.get("gpus") or []) or "none"),
                    *[(k, v) for k, v in pk.items() if v]]
        parts.append("<h2 id='environment'>Environment</h2><table class='env'>"
                     + "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in env_rows) + "</table>")
        parts.append("<details><summary>params.yaml</summary><pre>"
                     + esc(json.dumps(environment.get("params"), indent=2, default=str)) + "</pre></details>")
    parts.append(f"<script>{CHECK_JS}</script></body></html>\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")
    return path
