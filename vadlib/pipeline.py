"""Run a pipeline stage's notebook through papermill with its parameters from ``params.yaml``.

``python -m vadlib.pipeline <stage> [--item NAME]`` (what every ``dvc.yaml`` stage calls):

1. reads ``params.yaml`` (DVC's ``-S`` overrides have already been written into it);
2. builds the notebook parameters: every key of the ``<stage>:`` section, plus the shared
   sections ``seed``, ``backbone``, ``datasets``, and ``item``, ``out_dir``
   (``reports/<stage>[/<item>]``) and ``reports`` (where earlier stages wrote);
3. converts ``notebooks/<stage>.py`` (jupytext percent format) to a notebook, executes it with
   papermill, and writes ``<out_dir>/<stage>.ipynb`` and ``<stage>.html`` atomically.

One name per concept: stage ``zeroshot`` = ``notebooks/zeroshot.py`` = ``params.yaml: zeroshot``
= ``reports/zeroshot/``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from vadlib.config import load_params
from vadlib.errors import ConfigError
from vadlib.io import atomic_path

SHARED_SECTIONS = ("seed", "backbone", "datasets")


def notebook_parameters(params: dict[str, Any], stage: str, item: str | None = None,
                        reports: str | Path = "reports") -> dict[str, Any]:
    """The parameters papermill injects for ``stage`` (see module docstring); the stage's section and
    the shared ones are checked first (:func:`_validated`: the stage's section by its ``Params``)."""
    if stage not in params:
        raise ConfigError(f"params.yaml has no section '{stage}' (sections: {', '.join(params)})")
    section = params[stage] or {}
    if not isinstance(section, dict):
        raise ConfigError(f"params.yaml: section '{stage}' must be a mapping")
    clash = sorted(set(section) & set(SHARED_SECTIONS))
    if clash:
        raise ConfigError(f"params.yaml: section '{stage}' redefines the shared section(s) {clash}; "
                          "rename the key (a stage's list of datasets is 'run_on')")
    params = _validated(params, stage)
    out = {k: params[k] for k in SHARED_SECTIONS if k in params}
    out.update(params[stage] or {})
    out_dir = Path(reports) / stage / item if item else Path(reports) / stage
    out.update(item=item or "", out_dir=str(out_dir), stage=stage, reports=str(reports))
    return out


def _validated(params: dict[str, Any], stage: str) -> dict[str, Any]:
    """``params`` with the shared sections and ``stage``'s section checked (a copy, checked values).

    The stage's section is checked by its own declaration, ``vadlib.stages.<stage>.Params``, found by
    name so that running a stage imports only its own module; a notebook without a stage module
    (``compare``) is checked by :func:`vadlib.config.section_class`'s class, if any."""
    import importlib.util

    from vadlib.config import section_class, validate_section

    out = dict(params)
    for name in SHARED_SECTIONS:
        if name in params:
            out[name] = validate_section(params, name, "params.yaml")
    if importlib.util.find_spec(f"vadlib.stages.{stage}") is not None:
        cls = importlib.import_module(f"vadlib.stages.{stage}").Params
    else:
        cls = section_class(stage)
    if cls is not None:
        out[stage] = validate_section(params, stage, "params.yaml", cls=cls)
    return out


def run_notebook(stage: str, item: str | None = None, params_file: str | Path = "params.yaml",
                 notebooks: str | Path = "notebooks", reports: str | Path = "reports",
                 html: bool = True, extra: dict[str, Any] | None = None) -> Path:
    """Execute ``notebooks/<stage>.py`` with papermill; return the executed notebook's path."""
    import jupytext
    import papermill as pm

    src = Path(notebooks) / f"{stage}.py"
    if not src.is_file():
        raise ConfigError(f"{src}: no notebook for stage '{stage}'")
    params = notebook_parameters(load_params(params_file), stage, item, reports)
    if extra:
        params.update(extra)
    out_dir = Path(params["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    # The kernel must be this interpreter's (a venv's python need not be first on PATH).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("MPLBACKEND", "Agg")
    # No creation dates in figure files written by the kernel (matplotlib honours SOURCE_DATE_EPOCH).
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    nb = jupytext.read(src)
    params = _declared_only(params, src, nb, stage_keys=set((load_params(params_file).get(stage) or {})))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    target = out_dir / f"{stage}.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_in = Path(tmp) / f"{stage}.ipynb"
        jupytext.write(nb, tmp_in)
        with atomic_path(target) as tmp_out:
            try:
                pm.execute_notebook(str(tmp_in), str(tmp_out), parameters=params, kernel_name="python3",
                                    cwd=os.getcwd(), progress_bar=False, log_output=True)
            except pm.PapermillExecutionError as exc:
                failed = out_dir / f"{stage}.failed.ipynb"
                os.replace(tmp_out, failed)
                raise SystemExit(f"stage '{stage}'{' [' + item + ']' if item else ''} failed in "
                                 f"{src} (cell {exc.exec_count}): {exc.ename}: {exc.evalue}\n"
                                 f"executed notebook with the traceback: {failed}") from None
            strip_run_metadata(tmp_out, src, target)
    if html:
        write_html(target)
    return target


def _declared_only(params: dict[str, Any], src: Path, nb, stage_keys: set[str]) -> dict[str, Any]:
    """Keep the parameters the notebook's parameters cell declares.

    A key of the stage's own params section that the notebook does not declare is an error
    (a typo in params.yaml would otherwise be silently ignored); shared sections and runner
    values the notebook does not use are dropped.
    """
    import ast

    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ConfigError(f"{src}: no cell tagged 'parameters'")
    declared = {t.id for node in ast.parse(cells[0].source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    if declared == {"params"}:     # a stage notebook: one dict, checked against the stage's typed parameters
        from vadlib.stages import parameter_names

        declared = parameter_names(src.stem)
        unknown = sorted(stage_keys - declared)
        if unknown:
            raise ConfigError(f"params.yaml: {src.stem}.{unknown[0]} is not a parameter of stage {src.stem} "
                              f"(its parameters: {', '.join(sorted(declared))})")
        return {"params": params}
    unknown = sorted(stage_keys - declared)
    if unknown:
        raise ConfigError(f"params.yaml: {src.stem}.{unknown[0]} is not a parameter of {src} "
                          f"(its parameters: {', '.join(sorted(declared))})")
    return {k: v for k, v in params.items() if k in declared}


# Per-run values papermill and nbclient record in an executed notebook's metadata.
_RUN_KEYS = ("start_time", "end_time", "duration")
# A tqdm progress-bar line ("name:  95%|█████▌| 570/600 [00:01<00:00, 529.80frame/s]"): its rate and times
# differ on every run, and how many lines it prints depends on the speed.
_PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+ \[|^\s*\d+/\d+ \[\d+:\d+")
# A wall-time line a stage prints ("wall time: ..."; the figures are in the stage's timing.json): it
# differs on every run, so it is dropped from the stored notebook like a progress bar.
_WALL_TIME = re.compile(r"^wall time: ")


def _without_progress(text: str) -> str:
    """``text`` without its progress-bar lines (a bar redraws with ``\\r``) and ``wall time:`` lines."""
    return "".join(line for line in re.split(r"(?<=[\r\n])", text)
                    if not _PROGRESS.search(line) and not _WALL_TIME.match(line))


def strip_run_metadata(notebook: Path, src: Path, target: Path) -> None:
    """Drop what differs between two runs of an unchanged stage from an executed notebook.

    Timestamps and durations (notebook and cell level, papermill and nbclient ``execution``)
    go; random cell ids become ``cell-<index>``; tqdm progress-bar lines (rates, times) are
    removed from stderr outputs and consecutive stream outputs merged (their chunking depends
    on timing); papermill's temporary input/output paths become ``src`` and
    ``target``. What the cells
    printed and drew stays: the notebook is byte-identical when the results are.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    pm_meta = nb.metadata.get("papermill", {})
    for k in _RUN_KEYS:
        pm_meta.pop(k, None)
    if pm_meta:
        pm_meta["input_path"], pm_meta["output_path"] = Path(src).as_posix(), Path(target).as_posix()
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"          # nbformat / papermill draw random ids
        cell.metadata.pop("execution", None)
        if cell.get("outputs"):           # progress bars (stderr) go; warnings and prints stay
            kept = []
            for o in cell.outputs:
                if o.get("output_type") == "stream":     # stdout too: its "wall time:" lines
                    o["text"] = _without_progress(o["text"])
                    if not o["text"].strip():
                        continue
                if o.get("output_type") == "stream":
                    # how text was chunked, and how stdout and stderr interleave, depends on timing: within a
                    # run of stream outputs, each stream's text goes to its first output
                    block = []
                    for prev in reversed(kept):
                        if prev.get("output_type") != "stream":
                            break
                        block.append(prev)
                    same = [prev for prev in block if prev.get("name") == o.get("name")]
                    if same:
                        same[-1]["text"] += o["text"]
                        continue
                kept.append(o)
            cell["outputs"] = kept
        for k in _RUN_KEYS:
            cell.metadata.get("papermill", {}).pop(k, None)
    nbformat.write(nb, notebook)


def write_html(notebook: Path) -> Path:
    """Export an executed notebook to HTML beside it (atomically)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(notebook, as_version=4))
    out = notebook.with_suffix(".html")
    with atomic_path(out) as tmp:
        tmp.write_text(body, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vadlib.pipeline", description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", help="stage name = notebooks/<stage>.py = params.yaml section")
    ap.add_argument("--item", default=None, help="foreach item (e.g. a dataset name)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-html", action="store_true")
    args = ap.parse_args(argv)
    try:
        path = run_notebook(args.stage, args.item, params_file=args.params, html=not args.no_html)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
