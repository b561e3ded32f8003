"""Read one labelled case and check that image and label belong together, before it is trained or scored."""
from __future__ import annotations

import numpy as np

from ..io.readers import read_label_volume, read_volume
from .datalist import Case
from .errors import DatasetError


def check_case(case: Case):
    """Read and validate one case; returns (image Volume, label Volume)."""
    image = read_volume(case.image)
    label = read_label_volume(case.label)
    if image.geometry.shape != label.geometry.shape or not np.allclose(image.geometry.affine, label.geometry.affine,
                                                                        atol=1e-2):
        raise DatasetError(f"{case.label}: label grid ({label.geometry.describe()}) does not match the image "
                           f"{case.image.name} ({image.geometry.describe()}); resample the label onto the image")
    present = set(np.unique(label.array).astype(int).tolist()) - {0}
    if case.explicit:
        missing = sorted(set(case.label_map) - present)
        if missing:
            raise DatasetError(f"{case.label}: label value(s) {missing} declared in the datalist do not occur in "
                               f"the label image (values present: {sorted(present)[:20]}); fix 'labels'")
    unknown = sorted(present - set(case.label_map))
    if unknown and case.explicit:
        raise DatasetError(f"{case.label}: label value(s) {unknown[:10]} occur in the image but have no name; "
                           f"add them to 'labels'")
    return image, label
