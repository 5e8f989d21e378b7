"""The ``toolkit run`` table: its columns, rows streamed at fixed widths as pipelines finish, the
closing table fitted to its cells, and the summary line."""

from __future__ import annotations

from toolkit.jobs._job import VERDICTS
from toolkit.jobs._outcome import Outcome

COLUMNS = (  # (header, width while streaming, cell)
    ("pipeline", 0, lambda o: o.name),
    ("status", 6, lambda o: o.status),
    ("score", 26, lambda o: f"{o.metric} {o.score:.5g}" if o.metric else ""),
    (
        "baseline",
        34,
        lambda o: (
            f"{o.baseline} {o.baseline_score:.5g} ({o.verdict.upper() if o.verdict == 'loses' else o.verdict})"
            if o.baseline
            else ""
        ),
    ),
    ("model", 32, lambda o: o.model),
    ("onnx err", 8, lambda o: f"{o.onnx_max_error:.1e}"),
    ("ort b=1 ms", 10, lambda o: f"{o.latency_ms:.3f}"),
    ("seconds", 7, lambda o: f"{o.seconds:.1f}"),
)


def format_line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


def streaming_widths(names: list[str]) -> list[int]:
    """Column widths fixed before any row exists (a longer cell pushes the rest of its row)."""
    return [
        max(width, len(header), *(map(len, names) if header == "pipeline" else [0])) for header, width, _ in COLUMNS
    ]


def header_lines(widths: list[int]) -> list[str]:
    return [format_line([h for h, _, _ in COLUMNS], widths), "  ".join("-" * w for w in widths)]


def row_line(outcome: Outcome, widths: list[int]) -> str:
    return format_line([cell(outcome) for _, _, cell in COLUMNS], widths)


def format_table(outcomes: list[Outcome]) -> str:
    """The rows as an aligned table (widths fitted to the cells), header included."""
    cells = [[cell(o) for _, _, cell in COLUMNS] for o in outcomes]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, (h, _, _) in enumerate(COLUMNS)]
    return "\n".join([*header_lines(widths), *(format_line(row, widths) for row in cells)])


def summary_line(run, total: int, seconds: float) -> str:
    """The run's last line: how many pipelines were ok, failed, beat or lost to their baselines."""
    failed = [o.name for o in run.outcomes if o.status == "FAIL"]
    verdicts = {v: [o.name for o in run.outcomes if o.verdict == v] for v in VERDICTS}
    text = f"{len(run.outcomes) - len(failed)} ok, {len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "")
    text += "; against the baselines: " + ", ".join(f"{verdict} {len(names)}" for verdict, names in verdicts.items())
    text += f" ({', '.join(verdicts['loses'])})" if verdicts["loses"] else ""
    if run.interrupted_during is not None:
        finished = f"{len(run.outcomes)} of {total} pipelines finished in {seconds:.0f} s"
        return f"interrupted during {run.interrupted_during}: {finished}: {text}"
    return f"{total} pipelines in {seconds:.0f} s: {text}"
