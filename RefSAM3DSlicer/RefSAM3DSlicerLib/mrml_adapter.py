"""MRML nodes <-> RefSAM3DLib values: a volume node becomes a ``Volume``; a result becomes a segment.

Slicer's arrays are indexed [k, j, i] and the backend's [i, j, k]; this file is the only place that
transposes, and the IJK->RAS matrix is copied from the node exactly (composed with its parent transform,
because clicks are placed in world coordinates). Results are written with Slicer's own array helpers on
the volume's grid, so overlapping segments end up in separate layers and never overwrite one another.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError

ALGORITHM_NAME = "RefSAM3D"
TAG_ALGORITHM_TYPE = "DICOM.SegmentAlgorithmType"
TAG_ALGORITHM_NAME = "DICOM.SegmentAlgorithmName"
TAG_PROMPT = "RefSAM3D.Prompt"
TAG_PRESENCE = "RefSAM3D.Presence"
TAG_CONCEPT = "RefSAM3D.ConceptId"


# ---------------------------------------------------------------------------------------------- volumes
def check_volume_node(volume_node) -> None:
    if volume_node is None:
        raise InputError("select an input volume first")
    if volume_node.GetScene() is None:
        raise InputError(f"'{volume_node.GetName()}' is no longer in the scene")
    if not volume_node.IsA("vtkMRMLScalarVolumeNode") or volume_node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"'{volume_node.GetName()}' is not a grayscale (scalar) volume; select a CT or MRI volume")
    image = volume_node.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0:
        raise InputError(f"'{volume_node.GetName()}' has no voxels (still loading?)")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(f"'{volume_node.GetName()}' has {image.GetNumberOfScalarComponents()} components per voxel; "
                         "convert it to a scalar volume (Vector to Scalar Volume module)")


def world_ijk_to_ras(volume_node) -> np.ndarray:
    """The node's IJK->RAS matrix taken to world coordinates through its (linear) parent transforms."""
    import slicer
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(matrix)
    transform_node = volume_node.GetParentTransformNode()
    if transform_node is None:
        return ijk_to_ras
    if not transform_node.IsTransformToWorldLinear():
        raise InputError(f"'{volume_node.GetName()}' is under a non-linear transform; harden the transform "
                         "(Data module, right-click) before segmenting")
    to_world = vtk.vtkMatrix4x4()
    transform_node.GetMatrixTransformToWorld(to_world)
    return slicer.util.arrayFromVTKMatrix(to_world) @ ijk_to_ras


def volume_from_node(volume_node, modality: str | None = None):
    """A ``Volume`` the engine can open: a private copy of the voxels as [i, j, k] plus the world geometry.

    The copy is taken on the main thread, so the worker thread never reads memory Slicer may change.
    """
    import slicer

    from RefSAM3DLib.io.geometry import VolumeGeometry
    from RefSAM3DLib.io.volume import Volume

    check_volume_node(volume_node)
    array_kji = slicer.util.arrayFromVolume(volume_node)
    array_ijk = np.ascontiguousarray(array_kji.transpose(2, 1, 0))
    geometry = VolumeGeometry(world_ijk_to_ras(volume_node), array_ijk.shape)
    storage = volume_node.GetStorageNode()
    source = storage.GetFileName() if storage is not None and storage.GetFileName() else volume_node.GetName()
    return Volume(array_ijk, geometry, modality=modality, source=source)


def volume_fingerprint(volume_node) -> tuple:
    """What identifies "the same voxels on the same grid": node ID, voxel-data time stamp, world matrix.

    Comparing time stamps instead of arrays keeps re-prompting free of a full-volume copy.
    """
    check_volume_node(volume_node)
    matrix = tuple(np.round(world_ijk_to_ras(volume_node), 6).ravel().tolist())
    return (volume_node.GetID(), int(volume_node.GetImageData().GetMTime()), matrix)


# ---------------------------------------------------------------------------------------------- segmentations
def check_segmentation_node(segmentation_node, volume_node) -> None:
    """Raise if results for ``volume_node`` cannot go into ``segmentation_node``; changes nothing."""
    if segmentation_node is None:
        raise InputError("select or create an output segmentation first")
    if segmentation_node.GetScene() is None:
        raise InputError(f"segmentation '{segmentation_node.GetName()}' is no longer in the scene")
    volume_transform = volume_node.GetTransformNodeID()
    segmentation_transform = segmentation_node.GetTransformNodeID()
    adoptable = segmentation_transform is None and segmentation_node.GetSegmentation().GetNumberOfSegments() == 0
    if volume_transform != segmentation_transform and not adoptable:
        raise InputError(f"volume '{volume_node.GetName()}' and segmentation '{segmentation_node.GetName()}' "
                         "are under different transforms; put both under the same transform or harden it")


def prepare_segmentation_node(segmentation_node, volume_node) -> None:
    """Make a segmentation ready to receive results on ``volume_node``'s grid (display, geometry, transform).

    An empty, untransformed segmentation follows the volume's transform, so clicks, voxels and display agree.
    """
    check_segmentation_node(segmentation_node, volume_node)
    if segmentation_node.GetDisplayNode() is None:
        segmentation_node.CreateDefaultDisplayNodes()
    if volume_node.GetTransformNodeID() != segmentation_node.GetTransformNodeID():
        segmentation_node.SetAndObserveTransformNodeID(volume_node.GetTransformNodeID())
    if segmentation_node.GetNodeReference(segmentation_node.GetReferenceImageGeometryReferenceRole()) is None:
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
        _place_next_to_volume(segmentation_node, volume_node)


def _place_next_to_volume(segmentation_node, volume_node) -> None:
    """Put the segmentation in the volume's study folder (Data module), as other AI modules do."""
    import slicer

    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(volume_node.GetScene())
    if hierarchy is None:
        return
    volume_item = hierarchy.GetItemByDataNode(volume_node)
    segmentation_item = hierarchy.GetItemByDataNode(segmentation_node)
    if volume_item and segmentation_item:
        hierarchy.SetItemParent(segmentation_item, hierarchy.GetItemParent(volume_item))


def unique_segment_name(segmentation_node, name: str, ignore_segment_id: str | None = None) -> str:
    """``name`` if free, else "name 2", "name 3", ... (case-insensitive, like Slicer's name lookup)."""
    segmentation = segmentation_node.GetSegmentation()
    taken = {segmentation.GetNthSegment(i).GetName().lower()
             for i in range(segmentation.GetNumberOfSegments())
             if segmentation.GetNthSegmentID(i) != ignore_segment_id}
    name = " ".join((name or "Segment").split()) or "Segment"
    if name.lower() not in taken:
        return name
    number = 2
    while f"{name} {number}".lower() in taken:
        number += 1
    return f"{name} {number}"


def terminology_string(terminology) -> str:
    """Slicer's TerminologyEntry tag for a backend ``Terminology`` (vocab's writer when present)."""
    try:
        from RefSAM3DLib.vocab.slicer_terminology import slicer_terminology_string
    except ImportError:
        from RefSAM3DLib.io.segnrrd_export import slicer_terminology_string
    return slicer_terminology_string(terminology)


def result_terminology_string(result) -> str:
    """The tag for a result: a known concept's full entry (with its anatomic region, e.g. Neoplasm in Liver),
    else the result's own category/type/modifier codes."""
    if result.concept_id:
        try:
            from RefSAM3DLib.vocab.concepts import get_concept
            from RefSAM3DLib.vocab.slicer_terminology import concept_terminology_string

            return concept_terminology_string(get_concept(result.concept_id))
        except (ImportError, KeyError):
            pass
    return terminology_string(result.terminology)


def apply_result_metadata(segment, result, rename_to: str | None = None, identity: bool = True) -> None:
    """Name, colour, coded terminology (when ``identity``) and the tags DICOM-SEG export needs.

    ``identity=False`` keeps what the user chose for an existing segment and only records how it was made.
    """
    if identity:
        if rename_to is not None:
            segment.SetName(rename_to)
            if hasattr(segment, "SetNameAutoGenerated"):
                segment.SetNameAutoGenerated(False)
        segment.SetColor(*[float(c) for c in result.color])
        if hasattr(segment, "SetColorAutoGenerated"):
            segment.SetColorAutoGenerated(False)
        segment.SetTag(segment.GetTerminologyEntryTagName(), result_terminology_string(result))
        if result.concept_id:
            segment.SetTag(TAG_CONCEPT, result.concept_id)
        elif segment.HasTag(TAG_CONCEPT):
            segment.RemoveTag(TAG_CONCEPT)
    segment.SetTag(TAG_ALGORITHM_TYPE, result.algorithm_type)
    segment.SetTag(TAG_ALGORITHM_NAME, ALGORITHM_NAME)
    segment.SetTag(TAG_PROMPT, result.prompt or "")
    segment.SetTag(TAG_PRESENCE, "" if result.presence is None else f"{result.presence:.4f}")


def write_mask(segmentation_node, segment_id: str, volume_node, mask_ijk: np.ndarray) -> None:
    """Replace the segment's voxels with ``mask_ijk`` (bool [i, j, k] on ``volume_node``'s grid)."""
    import slicer

    mask_kji = np.ascontiguousarray(np.asarray(mask_ijk, dtype=np.uint8).transpose(2, 1, 0))
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask_kji, segmentation_node, segment_id, volume_node)


def read_mask(segmentation_node, segment_id: str, volume_node) -> np.ndarray:
    """The segment as bool [i, j, k] on ``volume_node``'s grid."""
    import slicer

    return np.asarray(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, volume_node)
                      ).transpose(2, 1, 0) > 0


def add_result_segment(segmentation_node, volume_node, result) -> str:
    """A NEW segment holding ``result``; its name is made unique. Returns the segment ID.

    If writing the voxels fails the empty segment is removed again, so nothing half-made stays behind.
    """
    segmentation = segmentation_node.GetSegmentation()
    name = unique_segment_name(segmentation_node, result.name)
    segment_id = segmentation.AddEmptySegment("", name, [float(c) for c in result.color])
    if not segment_id:
        raise RuntimeError("Slicer could not add a segment (is the Segmentations module logic registered?)")
    try:
        write_mask(segmentation_node, segment_id, volume_node, result.mask)
        apply_result_metadata(segmentation.GetSegment(segment_id), result, rename_to=name)
    except Exception:
        segmentation.RemoveSegment(segment_id)
        raise
    return segment_id


def replace_segment_with_result(segmentation_node, segment_id: str, volume_node, result, rename: bool) -> None:
    """Overwrite exactly one existing segment with ``result``: its voxels, and its name/colour/codes if ``rename``."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        raise InputError(f"segment '{segment_id}' to replace is no longer in '{segmentation_node.GetName()}'")
    write_mask(segmentation_node, segment_id, volume_node, result.mask)
    new_name = unique_segment_name(segmentation_node, result.name, segment_id) if rename else None
    apply_result_metadata(segment, result, rename_to=new_name, identity=rename)


def _tag(segment, name: str) -> str:
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else ""


def segment_tag(segmentation_node, segment_id: str, name: str) -> str:
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    return "" if segment is None else _tag(segment, name)
