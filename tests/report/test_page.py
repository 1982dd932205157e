"""index.html: links, quoted/random marking, and a headless-Chromium render (skipped without a browser)."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vadlib.report import style
from vadlib.report.page import find_figures, find_notebooks, write_index

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(b)), None)


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
    table = pd.DataFrame([
        {"kind": "measured", "method": "zeroshot", "dataset": "demo_a", "micro_auc": 61.234, "real_weights": False,
         "source": "zeroshot/demo_a/metrics.json"},
        {"kind": "quoted", "method": "HF2-VAD", "dataset": "ucsd_ped2", "micro_auc": 99.3, "real_weights": None,
         "source": "[repo]"}])
    env = {"git": {"commit": "abc123def4567", "dirty": True}, "time_utc": "2026-01-01T00:00:00+00:00",
           "packages": {"numpy": np.__version__}, "device": {"cpu": "test cpu", "cpu_count": 2, "gpus": []},
           "params": {"seed": 0}, "python": "3.x", "platform": "test"}
    page = write_index(reports / "report" / "index.html", table, title="Results <demo>",
                       notebooks=find_notebooks(reports), figures={"Overlays": find_figures(reports / "report")},
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
    assert re.search(r"<tr class=\"random\">.*?RANDOM WEIGHTS", text)
    assert "61.23" in text and "abc123def456" in text and "dirty" in text
    assert "transfer heatmap: no reports" in text
    for href in re.findall(r"(?:href|src)='([^'#]+)'", text):  # every local link resolves, except the not-yet-written CSV
        if not href.endswith("results.csv"):
            assert (page.parent / href).exists(), href


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (apt-get install -y chromium)")
def test_page_renders_in_headless_chromium(site, tmp_path):
    reports, page = site
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    dom = r.stdout
    assert "<table" in dom, r.stderr[-2000:]
    check = re.search(r'<div id="load-check"[^>]*>', dom).group(0)
    assert 'data-tables="1"' in check
    assert 'data-images="1"' in check and 'data-images-ok="1"' in check, check
    assert "HF2-VAD" in dom and "quoted [repo]" in dom
