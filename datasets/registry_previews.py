"""Alignment previews of the converted registry cases (``fetch_registry_data.py --preview-dir``): one PNG per case,
to check by eye that every label sits on its anatomy."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np


def write_previews(cases_dir: Path, case_ids: list[str], preview_dir: Path, max_zooms: int = 12) -> list[Path]:
    """One PNG per case, to check alignment by eye: an axial and a coronal slice through the labels (filled
    overlay), then, for cases with at most ``max_zooms`` structures, a zoomed axial and coronal cut through
    each structure's centre with its outline. Radiological view: patient right on screen left."""
    import nibabel as nib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    preview_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for case_id in case_ids:
        folder = cases_dir / case_id
        ct_image = nib.as_closest_canonical(nib.load(str(folder / "ct.nii.gz")))
        label_image = nib.as_closest_canonical(nib.load(str(folder / "label.nii.gz")))
        ct, labels = np.asarray(ct_image.dataobj, dtype=np.float32), np.asarray(label_image.dataobj)
        names = {int(k): v for k, v in json.loads((folder / "labels.json").read_text()).items()}
        sx, sy, sz = (float(z) for z in ct_image.header.get_zooms()[:3])
        present = [v for v in sorted(names) if (labels == v).any()]
        zooms = present if len(present) <= max_zooms else []
        columns = 4
        rows = 1 + (len(zooms) + 1) // 2
        figure = Figure(figsize=(4 * columns, 4.2 * rows))
        FigureCanvasAgg(figure)
        colours = np.random.default_rng(7).uniform(0.25, 1.0, size=(int(labels.max()) + 1, 3))

        def show(ax, image, lab, aspect, title, outline=None, colours=colours):
            # array axes (R->L index, A or S index) -> screen: rows top = anterior/superior, columns = patient R..L
            ax.imshow(np.rot90(image)[:, ::-1], cmap="gray", vmin=-1000, vmax=1000, aspect=aspect)
            if outline is None:
                rgba = np.zeros(lab.shape + (4,))
                rgba[..., :3] = colours[lab]
                rgba[..., 3] = np.where(lab > 0, 0.45, 0.0)
                ax.imshow(np.rot90(rgba)[:, ::-1], aspect=aspect)
            elif outline.any():
                ax.contour(np.rot90(outline.astype(float))[:, ::-1], levels=[0.5], colors=["red"], linewidths=0.8)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])

        mask = labels > 0
        z = int(np.argmax(mask.sum(axis=(0, 1)))) if mask.any() else ct.shape[2] // 2
        y = int(np.argmax(mask.sum(axis=(0, 2)))) if mask.any() else ct.shape[1] // 2
        show(figure.add_subplot(rows, 2, 1), ct[:, :, z], labels[:, :, z], sy / sx, f"{case_id}: axial z={z}")
        show(figure.add_subplot(rows, 2, 2), ct[:, y, :], labels[:, y, :], sz / sx, f"{case_id}: coronal y={y}")
        for n, value in enumerate(zooms):
            structure = labels == value
            ci, cj, ck = (int(round(c)) for c in np.argwhere(structure).mean(axis=0))
            found = np.argwhere(structure)
            low = np.maximum(found.min(axis=0) - 12, 0)
            high = np.minimum(found.max(axis=0) + 13, structure.shape)
            i, j, k = (slice(a, b) for a, b in zip(low, high))
            if not structure[:, :, ck].any():  # centroid outside a curved structure: take its fullest slice
                ck = int(np.argmax(structure.sum(axis=(0, 1))))
            if not structure[:, cj, :].any():
                cj = int(np.argmax(structure.sum(axis=(0, 2))))
            name = names[value]
            show(figure.add_subplot(rows, columns, columns + 2 * n + 1), ct[i, j, ck], None, sy / sx,
                 f"{name} axial z={ck}", outline=structure[i, j, ck])
            show(figure.add_subplot(rows, columns, columns + 2 * n + 2), ct[i, cj, k], None, sz / sx,
                 f"{name} coronal y={cj}", outline=structure[i, cj, k])
        figure.tight_layout()
        path = preview_dir / f"{case_id}.png"
        temporary = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}.png")
        figure.savefig(temporary, dpi=80)
        os.replace(temporary, path)
        out.append(path)
    return out
