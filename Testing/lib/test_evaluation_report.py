"""Report files: created, readable, round-tripping, and never silently overwritten."""
from __future__ import annotations

import math

import pytest

from RefSAM3DLib.evaluation import (
    CaseMetrics,
    OutputExistsError,
    markdown_table,
    read_metrics_csv,
    write_boxplot_png,
    write_metrics_csv,
    write_report,
)


def row(case, structure, dice, hd95=3.5, found=True, present=True, prompt="", nsd=0.9):
    return CaseMetrics(case=case, structure=structure, prompt=prompt or f"the {structure}", dice=dice, nsd=nsd,
                       hd95=hd95, presence_predicted=found, present_in_reference=present,
                       volume_pred_ml=12.345678901, volume_ref_ml=11.0)


@pytest.fixture
def rows():
    return [
        row("case01", "liver", 0.91), row("case02", "liver", 0.87, hd95=5.25), row("case03", "liver", 0.95),
        row("case01", "left kidney", 0.80, prompt="kidney, left | with a comma"),
        row("case02", "left kidney", 0.0, hd95=math.nan, found=False, present=True, nsd=0.0),
        row("case01", "gallbladder", 1.0, hd95=0.0, found=False, present=False, nsd=1.0),
    ]


def test_csv_round_trips(tmp_path, rows):
    path = write_metrics_csv(tmp_path / "metrics.csv", rows)
    text = path.read_text()
    assert text.splitlines()[0].startswith("case,structure,prompt,dice,nsd,hd95")
    assert "n/a" in text and "nan" not in text
    back = read_metrics_csv(path)
    assert len(back) == len(rows)
    for original, restored in zip(rows, back):
        for name in ("case", "structure", "prompt", "dice", "nsd", "presence_predicted", "present_in_reference",
                     "volume_pred_ml", "volume_ref_ml"):
            assert getattr(restored, name) == getattr(original, name)
        assert (math.isnan(restored.hd95) and math.isnan(original.hd95)) or restored.hd95 == original.hd95


def test_markdown_table_summarises_each_structure(rows):
    table = markdown_table(rows)
    lines = table.strip().splitlines()
    assert len(lines) == 2 + 3 + 1  # header, rule, three structures, overall
    liver = next(line for line in lines if line.startswith("| liver "))
    assert "| 3 |" in liver and "0.910 ± 0.040" in liver and "3.50" in liver and "3/3 (100%)" in liver
    kidney = next(line for line in lines if line.startswith("| left kidney "))
    assert "3.50 (1 of 2)" in kidney and "1/2 (50%)" in kidney
    gall = next(line for line in lines if line.startswith("| gallbladder "))
    assert "| 1.000 |" in gall and "1/1 (100%)" in gall
    assert lines[-1].startswith("| **Overall** | 6 |")
    assert markdown_table([]).startswith("_No cases")


def test_write_report_creates_all_files(tmp_path, rows):
    paths = write_report(tmp_path / "out", rows, title="Demo evaluation", notes="NSD tolerance 2 mm.")
    assert {p.name for p in paths.values()} == {"metrics.csv", "report.md", "dice_boxplot.png"}
    report = paths["markdown"].read_text()
    assert report.startswith("# Demo evaluation")
    for structure in ("liver", "left kidney", "gallbladder"):
        assert structure in report
    assert "dice_boxplot.png" in report and "NSD tolerance 2 mm." in report
    assert paths["boxplot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(read_metrics_csv(paths["csv"])) == len(rows)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_refuses_to_overwrite_unless_asked(tmp_path, rows):
    out = tmp_path / "out"
    write_report(out, rows, title="first")
    before = (out / "report.md").read_text()
    with pytest.raises(FileExistsError) as error:
        write_report(out, rows[:2], title="second")
    assert isinstance(error.value, OutputExistsError)
    message = str(error.value)
    assert "\n" not in message and "metrics.csv" in message and "overwrite" in message
    assert (out / "report.md").read_text() == before
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_metrics_csv(out / "metrics.csv", rows)
    with pytest.raises(OutputExistsError, match="dice_boxplot.png"):
        write_boxplot_png(out / "dice_boxplot.png", rows)
    write_report(out, rows[:2], title="second", overwrite=True)
    assert (out / "report.md").read_text().startswith("# second")
    assert len(read_metrics_csv(out / "metrics.csv")) == 2


def test_boxplot_other_metrics_and_errors(tmp_path, rows):
    assert write_boxplot_png(tmp_path / "hd95.png", rows, metric="hd95").stat().st_size > 1000
    many = [row(f"c{i}", f"structure with a long name {i}", 0.5 + i / 40) for i in range(8)]
    assert write_boxplot_png(tmp_path / "many.png", many).stat().st_size > 1000
    with pytest.raises(ValueError, match="metric"):
        write_boxplot_png(tmp_path / "x.png", rows, metric="accuracy")
    with pytest.raises(ValueError):
        write_report(tmp_path / "empty", [], title="nothing")
