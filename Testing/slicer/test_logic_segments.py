"""A prompt becomes a NEW named, coloured, coded segment; nothing else in the segmentation moves."""
import numpy as np
import pytest

pytest.importorskip("slicer")


def tag(segmentation_node, segment_id, name):
    from RefSAM3DSlicerLib.mrml_adapter import segment_tag

    return segment_tag(segmentation_node, segment_id, name)


def labelmap_ijk(segmentation_node, segment_id, volume_node):
    import slicer

    return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, volume_node).transpose(2, 1, 0)


@pytest.mark.parametrize("kind", ["ras", "oblique"])
def test_prompt_adds_a_coded_segment_equal_to_the_engine_mask(make_logic, make_volume, make_segmentation, kind):
    from RefSAM3DSlicerLib.mrml_adapter import result_terminology_string

    volume = make_volume(kind)
    segmentation = make_segmentation(volume)
    outcome = make_logic().segment(volume, segmentation, text="left kidney")
    assert not outcome.cancelled and len(outcome.added_segment_ids) == 1
    segment_id = outcome.added_segment_ids[0]
    result = outcome.results[0]
    assert result.mask.any() and not result.mask.all(), "test threshold should give a partial mask"
    segment = segmentation.GetSegmentation().GetSegment(segment_id)
    assert segment.GetName() == result.name == "left kidney"
    np.testing.assert_allclose(segment.GetColor(), result.color)
    terminology = tag(segmentation, segment_id, segment.GetTerminologyEntryTagName())
    assert terminology == result_terminology_string(result)
    assert "SCT^64033007^Kidney~SCT^7771000^Left" in terminology
    assert tag(segmentation, segment_id, "DICOM.SegmentAlgorithmType") == "AUTOMATIC"
    assert tag(segmentation, segment_id, "DICOM.SegmentAlgorithmName") == "RefSAM3D"
    assert tag(segmentation, segment_id, "RefSAM3D.Prompt") == "left kidney"
    assert float(tag(segmentation, segment_id, "RefSAM3D.Presence")) == pytest.approx(result.presence, abs=1e-4)
    np.testing.assert_array_equal(labelmap_ijk(segmentation, segment_id, volume), result.mask.astype(np.uint8))
    assert "Added 'left kidney'" in outcome.message


def test_clicks_make_a_semiautomatic_segment(make_logic, make_volume, make_segmentation, scene):
    volume = make_volume("lps")
    segmentation = make_segmentation(volume)
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    center = (np.asarray(volume.GetImageData().GetDimensions()) - 1) / 2
    matrix = np.eye(4)
    import vtk

    vtk_matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(vtk_matrix)
    for r in range(4):
        for c in range(4):
            matrix[r, c] = vtk_matrix.GetElement(r, c)
    points.AddControlPoint(*(matrix @ [*center, 1])[:3])
    outcome = make_logic().segment(volume, segmentation, text="liver", positive_points=points)
    segment_id, = outcome.added_segment_ids
    assert tag(segmentation, segment_id, "DICOM.SegmentAlgorithmType") == "SEMIAUTOMATIC"


def test_same_prompt_twice_gives_two_segments_and_user_work_is_untouched(make_logic, make_volume, make_segmentation,
                                                                       snapshot):
    import slicer

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    manual_id = segmentation.GetSegmentation().AddEmptySegment("", "my liver", [0.2, 0.4, 0.9])
    manual = np.zeros(slicer.util.arrayFromVolume(volume).shape, np.uint8)
    manual[3:11, 4:14, 5:17] = 1  # right where the model paints too
    slicer.util.updateSegmentBinaryLabelmapFromArray(manual, segmentation, manual_id, volume)
    before = snapshot(segmentation, volume)

    logic = make_logic()
    first = logic.segment(volume, segmentation, text="liver")
    second = logic.segment(volume, segmentation, text="liver")
    names = [segmentation.GetSegmentation().GetSegment(i).GetName() for i in
             first.added_segment_ids + second.added_segment_ids]
    assert names == ["liver", "liver 2"]
    assert (first.results[0].mask & manual.transpose(2, 1, 0).astype(bool)).any(), "overlap makes the test meaningful"
    after = snapshot(segmentation, volume)
    assert after[manual_id][0] == "my liver"
    np.testing.assert_array_equal(after[manual_id][2], before[manual_id][2])
    assert list(after) == [manual_id, *first.added_segment_ids, *second.added_segment_ids]


def test_replace_changes_exactly_the_chosen_segment(make_logic, make_volume, make_segmentation, snapshot):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    kept = logic.segment(volume, segmentation, text="spleen").added_segment_ids[0]
    target = logic.segment(volume, segmentation, text="liver").added_segment_ids[0]
    before = snapshot(segmentation, volume)
    logic.apply_settings(logic.settings.__class__(**{**logic.settings.__dict__, "largest_component": True}),
                         persist=False)
    outcome = logic.segment(volume, segmentation, text="pancreas", replace_segment_id=target)
    after = snapshot(segmentation, volume)
    assert outcome.added_segment_ids == [] and outcome.replaced_segment_id == target
    assert list(after) == list(before)
    assert after[kept][0] == before[kept][0]
    np.testing.assert_array_equal(after[kept][2], before[kept][2])
    assert after[target][0] == "pancreas"
    np.testing.assert_array_equal(after[target][2], outcome.results[0].mask.transpose(2, 1, 0).astype(np.uint8))


def test_not_found_adds_nothing_and_says_so(make_logic, make_volume, make_segmentation, snapshot):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    statuses = []
    before = snapshot(segmentation, volume)
    outcome = make_logic(presence_threshold=1.01).segment(volume, segmentation, text="spleen",
                                                          status_callback=statuses.append)
    assert outcome.added_segment_ids == [] and outcome.not_found == ["spleen"]
    assert "not found" in statuses[-1].lower() and "'spleen'" in statuses[-1]
    snapshot.same(before, snapshot(segmentation, volume))


def test_several_prompts_at_once_and_a_new_segmentation_node(make_logic, make_volume, scene):
    volume = make_volume("ras")
    outcome = make_logic().segment(volume, None, text="liver; left kidney\nspleen")
    segmentation = outcome.segmentation_node
    assert segmentation is not None and segmentation.GetName() == f"{volume.GetName()} segmentation"
    names = [segmentation.GetSegmentation().GetSegment(i).GetName() for i in outcome.added_segment_ids]
    assert names == ["liver", "left kidney", "spleen"]
    reference = segmentation.GetNodeReference(segmentation.GetReferenceImageGeometryReferenceRole())
    assert reference is not None and reference.GetID() == volume.GetID()


def test_unmatched_text_keeps_the_users_words(make_logic, make_volume, make_segmentation):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    outcome = make_logic().segment(volume, segmentation, text="weird blob thing")
    segment = segmentation.GetSegmentation().GetSegment(outcome.added_segment_ids[0])
    assert segment.GetName() == outcome.results[0].name
    assert tag(segmentation, outcome.added_segment_ids[0], segment.GetTerminologyEntryTagName())


def test_transform_mismatch_is_refused_before_any_work(make_logic, make_volume, make_segmentation, scene):
    from RefSAM3DSlicerLib import InputError

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    segmentation.GetSegmentation().AddEmptySegment("", "existing", [1, 0, 0])
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    volume.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(InputError, match="different transforms"):
        make_logic().segment(volume, segmentation, text="liver")


def test_empty_input_is_refused(make_logic, make_volume, make_segmentation):
    from RefSAM3DSlicerLib import InputError

    volume = make_volume("ras")
    with pytest.raises(InputError, match="type what to segment"):
        make_logic().segment(volume, make_segmentation(volume), text="  ;  ")


def test_a_lesion_is_coded_with_its_anatomic_region(make_logic, make_volume, make_segmentation):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    outcome = make_logic().segment(volume, segmentation, text="liver tumor")
    segment_id, = outcome.added_segment_ids
    terminology = tag(segmentation, segment_id,
                      segmentation.GetSegmentation().GetSegment(segment_id).GetTerminologyEntryTagName())
    assert outcome.results[0].concept_id
    category, kind, region = terminology.split("~")[1], terminology.split("~")[2], terminology.split("~")[5]
    assert "Morphologically Altered Structure" in category and "Neoplasm" in kind and region.endswith("^Liver")
