"""Evaluate a model on a datalist through the real inference engine (the same path users take).

Per case: every labelled structure present in the label image is prompted by its canonical name
(text only) and scored with Dice, NSD and HD95; names known to be absent (exhaustive label maps)
and structures of body regions the scan does not cover are prompted too, and score presence
("not found" is the right answer for them). Optionally each present structure is also segmented
interactively (``interactive.py``): rows "<structure> · N clicks" and "<structure> · box".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..cases.datalist import Case
from ..cases.validation import check_case
from ..cases.vocabulary_bridge import concept_of, negatives_pool
from ..engine.predictor import RefSAM3DPredictor
from ..engine.prompts import Prompt
from ..io.readers import read_label_volume, read_volume
from .metrics import CaseMetrics, evaluate_case


@dataclass
class EvaluationOptions:
    tolerance_mm: float = 2.0
    absent_prompts: int = 10  # how many "should be absent" prompts per case (0 = none)
    seed: int = 0
    clicks: tuple[int, ...] = ()  # interactive: Dice after these numbers of simulated clicks (e.g. 1, 3, 5)
    box: bool = False  # interactive: Dice with the reference's bounding box as the only prompt
    structures: tuple[str, ...] = ()  # only these label names (empty: every structure present)


def references_of_case(case_id: str) -> tuple[str, ...]:
    """The shipped reference CTs made from this very case: left out when evaluating on it (leave-one-out)."""
    from ..engine.locate.references import manifest

    return tuple(e["id"] for e in manifest() if case_id in e.get("evaluation_cases", ()))


def prompt_text(raw_name: str) -> str:
    concept = concept_of(raw_name)
    return concept.name if concept is not None else raw_name.replace("_", " ")


def evaluate_cases(predictor: RefSAM3DPredictor, cases: list[Case], options: EvaluationOptions,
                   progress: Callable[[float, str], None] | None = None) -> list[CaseMetrics]:
    rows: list[CaseMetrics] = []
    rng = np.random.default_rng(options.seed)
    for n, case in enumerate(cases):
        check_case(case)
        image = read_volume(case.image, modality=case.modality)
        label = read_label_volume(case.label)
        in_image = [v for v in sorted(case.label_map) if (label.array == v).any()]
        values = [v for v in in_image if not options.structures or case.label_map[v] in options.structures]
        present = [case.label_map[v] for v in values]
        every_present = [case.label_map[v] for v in in_image]
        absent_names = [name for v, name in case.label_map.items() if v not in in_image] if case.exhaustive else []
        pool = [name for name in negatives_pool(every_present, absent_names, case.regions)
                if name not in every_present]
        absent = list(rng.permutation(pool)[: options.absent_prompts]) if pool and options.absent_prompts else []
        prompts = [Prompt(text=prompt_text(name)) for name in present + absent]
        session = predictor.open(image, leave_out_references=references_of_case(case.id))
        results = session.segment(prompts, progress=None)
        spacing = image.geometry.spacing
        empty = np.zeros(image.geometry.shape, bool)
        for value, name, result in zip(values, present, results[: len(present)]):
            rows.append(evaluate_case(result.mask, label.array == value, spacing, case=case.id, structure=name,
                                      prompt=result.prompt or "", tolerance_mm=options.tolerance_mm,
                                      presence_predicted=result.found))
        for name, result in zip(absent, results[len(present):]):
            rows.append(evaluate_case(result.mask, empty, spacing, case=case.id, structure=f"absent: {name}",
                                      prompt=result.prompt or "", tolerance_mm=options.tolerance_mm,
                                      presence_predicted=result.found))
        if options.clicks or options.box:
            rows += _interactive_rows(session, case, image, label, values, present, options)
        if progress is not None:
            progress((n + 1) / len(cases), case.id)
    return rows


def _interactive_rows(session, case: Case, image, label, values, present, options: EvaluationOptions
                      ) -> list[CaseMetrics]:
    from .interactive import bounding_box_ras, click_series

    rows = []
    spacing = image.geometry.spacing
    for value, name in zip(values, present):
        reference = label.array == value
        if options.clicks:
            masks = click_series(session, reference, image.geometry, list(options.clicks))
            for count, mask in sorted(masks.items()):
                rows.append(evaluate_case(mask, reference, spacing, case=case.id,
                                          structure=f"{name} · {count} click{'s' if count > 1 else ''}",
                                          prompt=f"{count} simulated clicks", tolerance_mm=options.tolerance_mm,
                                          presence_predicted=bool(mask.any())))
        if options.box:
            result, = session.segment(Prompt(box=bounding_box_ras(reference, image.geometry)))
            rows.append(evaluate_case(result.mask, reference, spacing, case=case.id, structure=f"{name} · box",
                                      prompt="bounding box", tolerance_mm=options.tolerance_mm,
                                      presence_predicted=result.found))
    return rows
