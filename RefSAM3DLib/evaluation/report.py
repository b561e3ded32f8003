"""Evaluation reports: per-case CSV, a per-structure Markdown summary, and a box plot.

The CSV keeps every number (it is the record; ``read_metrics_csv`` reads it back exactly), the
Markdown table is what a person reads first, and the box plot shows spread and outliers that a
mean hides. Undefined HD95 values (exactly one mask empty) are written as "n/a", never as a
number, and are left out of the HD95 median with the count shown.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_output, check_writable
from .metrics import CaseMetrics, presence_accuracy

NOT_AVAILABLE = "n/a"
CSV_COLUMNS = tuple(field.name for field in dataclasses.fields(CaseMetrics))
METRIC_LABELS = {"dice": "Dice", "nsd": "Normalised surface Dice", "hd95": "HD95 (mm)"}
REPORT_FILES = {"csv": "metrics.csv", "markdown": "report.md", "boxplot": "dice_boxplot.png"}


def _write_text(path: str | Path, text: str, overwrite: bool) -> Path:
    """UTF-8 with Unix line ends, via a temporary sibling renamed into place (never a half-written file)."""
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


# ------------------------------------------------------------------ CSV
def _csv_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return NOT_AVAILABLE if math.isnan(value) else repr(value)
    return str(value)


def _parse_float(text: str) -> float:
    return math.nan if text.strip().lower() in (NOT_AVAILABLE, "nan", "") else float(text)


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def write_metrics_csv(path: str | Path, rows: Iterable[CaseMetrics], overwrite: bool = False) -> Path:
    """One line per (case, structure, prompt), columns in ``CaseMetrics`` field order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(getattr(row, column)) for column in CSV_COLUMNS])
    return _write_text(path, buffer.getvalue(), overwrite)


def read_metrics_csv(path: str | Path) -> list[CaseMetrics]:
    """Inverse of ``write_metrics_csv`` (so reports can be re-made or merged without re-running inference)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a metrics CSV, missing columns {', '.join(missing)}")
        rows = []
        for record in reader:
            rows.append(CaseMetrics(
                case=record["case"], structure=record["structure"], prompt=record["prompt"],
                dice=_parse_float(record["dice"]), nsd=_parse_float(record["nsd"]), hd95=_parse_float(record["hd95"]),
                presence_predicted=_parse_bool(record["presence_predicted"]),
                present_in_reference=_parse_bool(record["present_in_reference"]),
                volume_pred_ml=_parse_float(record["volume_pred_ml"]),
                volume_ref_ml=_parse_float(record["volume_ref_ml"])))
    return rows


# ------------------------------------------------------------------ Markdown
def _group_by_structure(rows: Sequence[CaseMetrics]) -> dict[str, list[CaseMetrics]]:
    """Structures in order of first appearance, so the table follows the evaluation's own order."""
    groups: dict[str, list[CaseMetrics]] = {}
    for row in rows:
        groups.setdefault(row.structure, []).append(row)
    return groups


def _mean_sd(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def _median_hd95(rows: Sequence[CaseMetrics]) -> str:
    finite = [r.hd95 for r in rows if math.isfinite(r.hd95)]
    if not finite:
        return NOT_AVAILABLE
    text = f"{statistics.median(finite):.2f}"
    return text if len(finite) == len(rows) else f"{text} ({len(finite)} of {len(rows)})"


def _presence(rows: Sequence[CaseMetrics]) -> str:
    accuracy = presence_accuracy([r.presence_predicted for r in rows], [r.present_in_reference for r in rows])
    correct = round(accuracy * len(rows))
    return f"{correct}/{len(rows)} ({accuracy:.0%})"


def _summary_cells(label: str, rows: Sequence[CaseMetrics]) -> list[str]:
    return [label, str(len(rows)), _mean_sd([r.dice for r in rows]), f"{statistics.fmean(r.nsd for r in rows):.3f}",
            _median_hd95(rows), _presence(rows)]


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[CaseMetrics]) -> str:
    """Per-structure n, Dice mean ± sd, mean NSD, median HD95 and presence accuracy, then an overall line."""
    rows = list(rows)
    if not rows:
        return "_No cases were evaluated._\n"
    header = ["Structure", "n", "Dice (mean ± sd)", "NSD (mean)", "HD95 mm (median)", "Presence accuracy"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|---:|"]
    for structure, group in _group_by_structure(rows).items():
        lines.append("| " + " | ".join(_summary_cells(_markdown_escape(structure), group)) + " |")
    lines.append("| " + " | ".join(_summary_cells("**Overall**", rows)) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ box plot
def write_boxplot_png(path: str | Path, rows: Sequence[CaseMetrics], metric: str = "dice",
                      overwrite: bool = False) -> Path:
    """One box per structure (with the individual cases drawn on top), labelled with the case count."""
    if metric not in METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRIC_LABELS)}")
    groups = _group_by_structure(list(rows))
    if not groups:
        raise ValueError("no rows to plot")
    # The object API with the Agg canvas needs no display and leaves pyplot's global state alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(groups)
    values = [[v for v in (getattr(r, metric) for r in groups[name]) if math.isfinite(v)] for name in names]
    figure = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(names)), 4.8), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    drawn = [i for i, v in enumerate(values) if v]
    if drawn:
        axes.boxplot([values[i] for i in drawn], positions=[i + 1 for i in drawn], widths=0.6, showfliers=False)
        jitter = np.random.default_rng(0)  # fixed seed: the same data always gives the same picture
        for i in drawn:
            x = i + 1 + jitter.uniform(-0.15, 0.15, size=len(values[i]))
            axes.scatter(x, values[i], s=12, alpha=0.6, color="tab:blue", zorder=3)
    rotate = len(names) > 4 or max(len(n) for n in names) > 12  # slanted labels stay legible when long or many
    labels = [f"{name}{' ' if rotate else chr(10)}(n={len(groups[name])})" for name in names]
    axes.set_xticks(range(1, len(names) + 1), labels, rotation=30 if rotate else 0,
                    ha="right" if rotate else "center", rotation_mode="anchor")
    axes.set_xlim(0.4, len(names) + 0.6)
    axes.set_ylabel(METRIC_LABELS[metric])
    if metric in ("dice", "nsd"):
        axes.set_ylim(-0.02, 1.02)
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(f"{METRIC_LABELS[metric]} per structure")
    figure.tight_layout()
    with atomic_output(path, overwrite=overwrite) as temporary:
        figure.savefig(temporary, format="png")
    return Path(path)


# ------------------------------------------------------------------ whole report
def write_report(out_dir: str | Path, rows: Sequence[CaseMetrics], title: str, overwrite: bool = False,
                 notes: str = "") -> dict[str, Path]:
    """Write metrics.csv, dice_boxplot.png and report.md into ``out_dir``; all refused up front if any exists."""
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to report")
    out_dir = Path(out_dir)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    for path in paths.values():  # refuse before writing anything, so a refused report leaves no partial output
        check_writable(path, overwrite)
    write_metrics_csv(paths["csv"], rows, overwrite=True)
    write_boxplot_png(paths["boxplot"], rows, "dice", overwrite=True)
    cases = len({r.case for r in rows})
    structures = len({r.structure for r in rows})
    text = "\n".join([
        f"# {title}", "",
        f"{len(rows)} results: {cases} case(s), {structures} structure(s).", "",
        markdown_table(rows),
        f"![Dice per structure]({REPORT_FILES['boxplot']})", "",
        ("Conventions: both masks empty gives Dice 1, NSD 1, HD95 0; exactly one empty gives Dice 0, NSD 0 and an "
         "undefined HD95 (n/a), which is left out of the HD95 median. Distances are in millimetres using the voxel "
         f"spacing. Per-case values: [{REPORT_FILES['csv']}]({REPORT_FILES['csv']})."), "",
    ] + ([notes.strip(), ""] if notes.strip() else []))
    _write_text(paths["markdown"], text, overwrite=True)
    return paths
