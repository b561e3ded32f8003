import numpy as np
from test_logic_undo import add_manual_segment
def test_dbg(make_logic, make_volume, make_segmentation, snapshot, scene):
    import slicer
    volume = make_volume("lps")
    segmentation = make_segmentation(volume)
    f=add_manual_segment(segmentation, volume, "first", np.s_[0:4, 0:5, 0:6])
    target = add_manual_segment(segmentation, volume, "second", np.s_[8:13, 10:16, 12:20])
    segmentation.GetSegmentation().CollapseBinaryLabelmaps(False)
    before = snapshot(segmentation, volume)
    logic = make_logic()
    out=logic.segment(volume, segmentation, text="liver", replace_segment_id=target)
    mid = snapshot(segmentation, volume)
    print("layers", segmentation.GetSegmentation().GetNumberOfLayers(), "mask", out.results[0].mask.sum(), "mid second", mid[target][2].sum(), "first", mid[f][2].sum())
    logic.undo(scene)
    after=snapshot(segmentation, volume)
    print("before", before[target][2].sum(), "after", after[target][2].sum(), "first", before[f][2].sum(), after[f][2].sum())
    d = after[target][2] != before[target][2]
    print(np.argwhere(d)[:5], after[target][2][d][:5], before[target][2][d][:5])
