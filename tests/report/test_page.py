"""index.html: links, blocks of measured demo / real-data / quoted rows, random marking, figures.

The page `make demo` generates is rendered in headless Chromium by tests/test_pipeline.py.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vadlib.report import style
from vadlib.report.page import find_figures, find_notebooks, write_index

@pytest.fixture
def site(tmp_path):
    reports = tmp_path / "reports"
    nb = reports / "zeroshot" / "demo_a" / "zeroshot.html"
    nb.parent.mkdir(parents=True)
    nb.write_text("<html><body>notebook</body></html>")
    (reports / "report" / "report.html").parent.mkdir(parents=True)
    (reports / "report" / "report.html").write_text("self")                   # the report's own notebook: not listed
    fig, ax = style.figure("single")
    ax.plot(np.arange(5), np.arange(5))
    style.save(fig, "roc_overlay", reports / "report" / "figures")
    (reports / "transfer" / "figures").mkdir(parents=True)
    shutil.copy(reports / "report" / "figures" / "roc_overlay.png", reports / "transfer" / "heatmap.png")    # same bytes
    shutil.copy(reports / "report" / "figures" / "roc_overlay.png", reports / "transfer" / "figures" / "heatmap.png")
    (reports / "zeroshot" / "demo_a" / "metrics.json").write_text('{"micro_auc": 0.61}')
    table = pd.DataFrame([
        {"kind": "measured", "method": "zeroshot", "dataset": "demo_a", "micro_auc": 61.234, "real_weights": False,
         "backbone": "vadlib-tiny/random", "gt_file": "generated", "source": "zeroshot/demo_a/metrics.json"},
        {"kind": "measured", "method": "flow_nf", "dataset": "ucsd_ped2", "micro_auc": 88.2, "real_weights": None,
         "gt_file": "UCSDped2.m", "source": "flow_nf_ped2/metrics.json"},
        {"kind": "quoted", "method": "HF2-VAD", "dataset": "ucsd_ped2", "micro_auc": 99.3, "real_weights": None,
         "source": "[repo]"}])
    env = {"git": {"commit": "abc123def4567", "dirty": True},
           "packages": {"numpy": np.__version__}, "device": {"cpu": "test cpu", "cpu_count": 2, "gpus": []},
           "params": {"seed": 0}, "python": "3.x", "platform": "test"}
    page = write_index(reports / "report" / "index.html", table, title="Results <demo>",
                       notebooks=find_notebooks(reports), reports=reports,
                       figures={"Overlays": find_figures(reports / "report"), "Transfer": find_figures(reports / "transfer")},
                       downloads=[reports / "report" / "results.csv"], environment=env,
                       skipped=["transfer heatmap: no reports/transfer/*/transfer_matrix.csv"])
    return reports, page


def test_page_content_and_relative_links(site):
    reports, page = site
    text = page.read_text()
    assert "Results &lt;demo&gt;" in text                         # escaped title
    assert "href='../zeroshot/demo_a/zeroshot.html'" in text
    assert "report.html" not in text.split("id='notebooks'")[1].split("</ul>")[0]
    assert "src='figures/roc_overlay.png'" in text and "href='figures/roc_overlay.pdf'" in text
    assert re.search(r"<tr class=\"quoted\">.*?quoted \[repo\]", text)
    assert re.search(r"<tr class=\"random\"><td class=\"col-method\">zeroshot <span class=\"badge random-badge\">RANDOM", text)
    assert "61.23" in text and "abc123def456" in text and "dirty" in text
    assert "transfer heatmap: no reports" in text
    # three blocks, in this order, each row in its own: demo, real data, quoted
    blocks = [m.group(1) for m in re.finditer(r"id=\"results-table-(\w+)\"", text)]
    assert blocks == ["demo", "real", "quoted"]
    demo, real, quoted = (text.split(f'id="results-table-{b}"')[1].split("</table>")[0] for b in blocks)
    assert "demo_a" in demo and "ucsd_ped2" not in demo and "flow_nf" in real and "HF2-VAD" in quoted
    assert "id='random-banner'" in text and "1 measured row(s)" in text
    # the column chooser: protocol columns start hidden, by class
    assert "<body class='hide-gt_file'>" in text and ".hide-gt_file .col-gt_file{display:none}" in text
    assert "value='gt_file'>" in text and "value='backbone' checked>" in text
    assert "href='../zeroshot/demo_a/metrics.json'" in text                     # a measured row links its source
    # the same image under two names is shown once; figures shown at their physical size
    assert text.count("<img ") == 1 and "alt='roc_overlay'" in text      # three files, one image
    assert re.search(r"<figure style='width:\d+px'><a href='figures/roc_overlay.png'>", text)
    for href in re.findall(r"(?:href|src)='([^'#]+)'", text):  # every local link resolves, except the not-yet-written CSV
        if not href.endswith("results.csv"):
            assert (page.parent / href).exists(), href

