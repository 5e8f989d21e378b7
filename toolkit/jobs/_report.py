"""``exports/report.html``: one self-contained page of a ``toolkit run`` (the results table, then each
pipeline's details and figures, images embedded), rebuilt from the export folders alone."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from toolkit.onnx._files import atomic_write_files

REPORT_FILE = "report.html"
TRAINING_FIGURE = "training.png"
COLUMNS = ("pipeline", "status", "score", "baseline", "verdict", "model", "onnx err", "seconds")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; }
td.FAIL, td.LOSES { color: #b00; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.8em; white-space: pre-wrap; font-size: 0.85em; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.8em; color: #555; }
"""


class ReportError(ValueError):
    """The export folder cannot give a report (nothing exported, or a file that cannot be read)."""


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read {what} {path}: {error}") from None


def _number(row: dict, key: str, form: str) -> str:
    value = row.get(key)
    return format(value, form) if isinstance(value, (int, float)) else ""


def _cell(row: dict, column: str) -> str:
    """One cell of the results table; rows written by older runs may lack a field (blank)."""
    if column == "pipeline":
        return f'<a href="#{html.escape(row["name"])}">{html.escape(row["name"])}</a>'
    if column == "score":
        return html.escape(f"{row.get('metric', '')} {_number(row, 'score', '.5g')}".strip())
    if column == "baseline":
        return html.escape(f"{row.get('baseline', '')} {_number(row, 'baseline_score', '.5g')}".strip())
    if column == "onnx err":
        return _number(row, "onnx_max_error", ".1e")
    if column == "seconds":
        return _number(row, "seconds", ".1f")
    return html.escape(str(row.get(column, "")))


def _section(row: dict, folder: Path) -> str:
    name = row["name"]
    parts = [f'<section id="{html.escape(name)}"><h2>{html.escape(name)}</h2>']
    if folder.is_dir():
        metadata = _read_json(folder / "model.json", "the model.json of") if (folder / "model.json").exists() else {}
        estimator = metadata.get("estimator", {}).get("class", row.get("model", ""))
        parts.append(f"<p>{html.escape(str(estimator))}: {html.escape(row.get('metric', ''))} {row.get('score')}</p>")
    for text in filter(None, (row.get("details"), row.get("problem"))):
        parts.append(f"<pre>{html.escape(text)}</pre>")
    for image in sorted(folder.glob("*.png")) if folder.is_dir() else []:
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{html.escape(image.stem)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(image.name)}</figcaption></figure>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def build_report(out: str | Path) -> Path:
    """Write ``<out>/report.html`` from ``<out>/results.json`` and the pipelines' folders.

    Nothing is refitted: the page holds the results table, then per pipeline its details and
    every figure its folder holds (PNG, embedded as data URIs, so the page needs no network).
    Written atomically: a failure leaves any earlier report as it was.

    Parameters
    ----------
    out : str or Path
        The export root of a ``toolkit run`` (``exports/`` by default).

    Returns
    -------
    Path of the page.

    Raises
    ------
    ReportError
        When ``out`` holds no results.json (nothing was exported there), or a results.json /
        model.json that cannot be read.
    """
    out = Path(out)
    results_path = out / "results.json"
    if not results_path.exists():
        raise ReportError(f"no exports in {out}: {results_path} not found (run `toolkit run --out {out}` first)")
    results = _read_json(results_path, "the results file")
    rows = results.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "name" in r for r in rows):
        raise ReportError(f"cannot read the results file {results_path}: no list of rows with names")
    header = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{html.escape(str(row.get("status", "")))}">{_cell(row, c)}</td>'
            if c == "status"
            else f"<td>{_cell(row, c)}</td>"
            for c in COLUMNS
        )
        + "</tr>"
        for row in rows
    )
    sections = "\n".join(_section(row, out / row["name"]) for row in rows)
    title = f"toolkit run ({results.get('setting', '')}, {results.get('started', '')})"
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<section id="results"><h2>Results</h2><table><tr>{header}</tr>{body}</table></section>\n'
        f"{sections}\n</body></html>\n"
    )
    atomic_write_files(out, {REPORT_FILE: page.encode("utf-8")})
    return out / REPORT_FILE
