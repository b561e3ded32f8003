"""The preview must show patient right on screen left, anterior and superior up, whatever the input orientation."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from RefSAM3DLib.io.errors import OutputExistsError
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.preview import display_window, preview_planes, write_preview_png
from RefSAM3DLib.io.segments import SegmentOutput
from RefSAM3DLib.io.volume import Volume
from RefSAM3DLib.vocab.codes import Code, Terminology

SHAPE = (30, 26, 22)
SPACING = (1.0, 1.5, 3.0)
DIRECTIONS_RAS = {
    "RAS": np.eye(3),
    "LPS": np.diag([-1.0, -1.0, 1.0]),
    "LIP (axes permuted)": np.array([[-1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]),
    "oblique 20": Rotation.from_euler("z", 20, degrees=True).as_matrix() @ np.diag([-1.0, -1.0, 1.0]),
}
TISSUE = Terminology(Code("85756007", "SCT", "Tissue"), Code("85756007", "SCT", "Tissue"))


def _marker_volume(direction: np.ndarray) -> tuple[Volume, SegmentOutput]:
    """A CT-like box with a bright marker in the patient's right-anterior-superior corner, as a found segment."""
    geometry = VolumeGeometry.from_spacing(SHAPE, spacing=SPACING, origin=(3.0, -9.0, 40.0), direction=direction)
    centre = geometry.ijk_to_ras((np.asarray(SHAPE) - 1) / 2.0)[0]
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1).reshape(-1, 3)
    ras = (geometry.ijk_to_ras(ijk) - centre).reshape(SHAPE + (3,))
    marker = (ras[..., 0] > 6) & (ras[..., 1] > 6) & (ras[..., 2] > 9)  # R, A, S all positive
    array = np.where(marker, 300, -1000).astype(np.int16)
    return Volume(array, geometry, modality="CT"), SegmentOutput("marker", marker, (1.0, 0.0, 0.0), TISSUE)


def _quadrant_sums(image: np.ndarray) -> dict[str, float]:
    rows, columns = image.shape
    return {"top-left": image[: rows // 2, : columns // 2].sum(), "top-right": image[: rows // 2, columns // 2:].sum(),
            "bottom-left": image[rows // 2:, : columns // 2].sum(),
            "bottom-right": image[rows // 2:, columns // 2:].sum()}


@pytest.mark.parametrize("orientation", list(DIRECTIONS_RAS))
def test_planes_are_radiological_for_any_orientation(orientation):
    volume, marker = _marker_volume(DIRECTIONS_RAS[orientation])
    planes = preview_planes(volume, [marker])
    assert [p.title.split()[0] for p in planes] == ["axial", "coronal", "sagittal"]
    # axial: right->left, anterior up; coronal: right->left, superior up; sagittal: anterior->left, superior up
    for plane in planes:
        sums = _quadrant_sums(plane.overlay[..., 3])
        assert max(sums, key=sums.get) == "top-left", (plane.title, sums)
        bright = _quadrant_sums((plane.image > 0).astype(float))
        assert max(bright, key=bright.get) == "top-left"
    assert [p.side_labels for p in planes] == [("R", "L", "A", "P"), ("R", "L", "S", "I"), ("A", "P", "S", "I")]


def test_aspect_ratio_follows_the_spacing():
    volume, marker = _marker_volume(DIRECTIONS_RAS["LPS"])
    axial, coronal, sagittal = preview_planes(volume, [marker])
    assert axial.image.shape == (SHAPE[1], SHAPE[0])  # rows = A-P, columns = R-L
    assert axial.aspect == pytest.approx(1.5 / 1.0)
    assert coronal.aspect == pytest.approx(3.0 / 1.0)
    assert sagittal.aspect == pytest.approx(3.0 / 1.5)


def test_window_is_soft_tissue_for_ct_and_percentiles_otherwise():
    volume, _ = _marker_volume(np.eye(3))
    assert display_window(volume) == (-160.0, 240.0)
    unknown_ct = Volume(volume.array, volume.geometry, modality=None)
    assert display_window(unknown_ct) == (-160.0, 240.0)
    mr = Volume(np.linspace(0, 1000, volume.array.size).reshape(SHAPE).astype(np.float32), volume.geometry, "MR")
    low, high = display_window(mr)
    assert low == pytest.approx(10.0, abs=0.5) and high == pytest.approx(990.0, abs=0.5)


def test_png_is_written_atomically_with_legend_entries(tmp_path):
    volume, marker = _marker_volume(DIRECTIONS_RAS["oblique 20"])
    missing = SegmentOutput("spleen", np.zeros(SHAPE, bool), (0.6, 0.3, 0.7), TISSUE, found=False)
    path = write_preview_png(tmp_path / "preview.png", volume, [marker, missing])
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1300, 540)
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]
    with pytest.raises(OutputExistsError):
        write_preview_png(path, volume, [marker])


def test_preview_without_found_segments_uses_the_volume_centre(tmp_path):
    volume, _ = _marker_volume(np.eye(3))
    missing = SegmentOutput("spleen", np.zeros(SHAPE, bool), (0.6, 0.3, 0.7), TISSUE, found=False)
    axial, _, sagittal = preview_planes(volume, [missing])
    assert axial.overlay is None
    assert axial.title == f"axial (slice {SHAPE[2] // 2})" and sagittal.title == f"sagittal (slice {SHAPE[0] // 2})"
    assert write_preview_png(tmp_path / "empty.png", volume, [missing]).stat().st_size > 10_000


def test_real_ct_preview(tmp_path, shared_data):
    """Liver (label 5), spleen (1), left kidney (3) of the shared abdominal CT; look at the PNG when in doubt."""
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    labels = read_label_volume(folder / "seg_total_v1.nii.gz").array
    segments = [SegmentOutput(name, labels == value, color, TISSUE)
                for name, value, color in (("liver", 5, (0.87, 0.51, 0.39)), ("spleen", 1, (0.62, 0.35, 0.71)),
                                           ("left kidney", 3, (0.2, 0.6, 0.9)))]
    axial = preview_planes(volume, segments)[0]
    overlay = axial.overlay[..., :3] * axial.overlay[..., 3:]
    columns = axial.image.shape[1]
    liver_columns = np.nonzero(np.all(np.isclose(axial.overlay[..., :3], (0.87, 0.51, 0.39)), axis=-1))[1]
    assert overlay.any() and liver_columns.mean() < columns / 2  # patient right (liver) on screen left
    assert write_preview_png(tmp_path / "ct.png", volume, segments).stat().st_size > 50_000
