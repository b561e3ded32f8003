"""Evaluation of segmentations against reference masks: per-case metrics and written reports.

Metrics are computed in physical millimetres (anisotropic spacing is honoured) so that numbers
from differently resampled volumes stay comparable; reports are written atomically and never
replace an existing file unless asked to, so an earlier evaluation cannot be lost by accident.
"""
from ..io.errors import OutputExistsError
from .metrics import CaseMetrics, dice, evaluate_case, hd95, normalized_surface_dice, presence_accuracy, volume_ml
from .report import markdown_table, read_metrics_csv, write_boxplot_png, write_metrics_csv, write_report

__all__ = [
    "CaseMetrics", "OutputExistsError", "dice", "evaluate_case", "hd95", "markdown_table", "normalized_surface_dice",
    "presence_accuracy", "read_metrics_csv", "volume_ml", "write_boxplot_png", "write_metrics_csv", "write_report",
]
