"""The panel's stored selection survives a restore (defect: restoring the volume overwrote the stored
segmentation), shortcuts are configurable settings, and the module category is translated in Slicer's context."""
import ast
from pathlib import Path

MODULE_FILE = Path(__file__).resolve().parents[2] / "RefSAM3DSlicer" / "RefSAM3DSlicer.py"


def test_restoring_the_volume_does_not_overwrite_the_stored_segmentation(scene, make_volume, make_segmentation):
    from RefSAM3DSlicerLib.parameter_node import restore_selection, store_selection, stored_selection

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    parameters = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "RefSAM3DSlicer")
    store_selection(parameters, volume, segmentation)

    panel = {"volume": None, "segmentation": None}  # a fresh panel: nothing selected yet

    def on_selection_changed():  # what the widget does whenever a selector changes: store what it shows
        store_selection(parameters, panel["volume"], panel["segmentation"])

    def select_volume(node):
        panel["volume"] = node
        on_selection_changed()  # fires while the segmentation selector still shows nothing

    def select_segmentation(node):
        panel["segmentation"] = node
        on_selection_changed()

    restore_selection(parameters, select_volume, select_segmentation)
    assert panel == {"volume": volume, "segmentation": segmentation}
    assert stored_selection(parameters) == (volume, segmentation)


def test_widget_restores_through_restore_selection():
    text = MODULE_FILE.read_text(encoding="utf-8")
    assert "restore_selection(" in text


def test_module_category_is_translated_in_slicers_context():
    tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
    categories = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(ast.unparse(t) == "self.parent.categories" for t in node.targets)]
    assert len(categories) == 1
    assert ast.unparse(categories[0]) == "[translate('qSlicerAbstractCoreModule', 'Segmentation')]"


def test_shortcuts_are_settings_with_safe_defaults(tmp_path):
    from RefSAM3DSlicerLib.settings import JsonSettingsStore, RefSAM3DSettings
    from RefSAM3DSlicerLib.shortcuts import default_shortcuts, describe_shortcuts

    store = JsonSettingsStore(tmp_path / "settings.json")
    assert store.load().shortcuts == default_shortcuts()
    settings = RefSAM3DSettings(shortcuts={**default_shortcuts(), "include": "A", "exclude": "W"})
    store.save(settings)
    loaded = store.load().shortcuts
    assert loaded["include"] == "A" and loaded["exclude"] == "W" and loaded["undo"] == "Z"
    # a clash, a reserved key, an empty key or garbage never leave an action without a key
    assert RefSAM3DSettings(shortcuts={"include": "E"}).validated().shortcuts == default_shortcuts()
    assert RefSAM3DSettings(shortcuts={"undo": "Ctrl+Z", "box": ""}).validated().shortcuts == default_shortcuts()
    assert RefSAM3DSettings(shortcuts="nonsense").validated().shortcuts == default_shortcuts()
    assert "Ctrl+Z: undo (panel)" in describe_shortcuts(default_shortcuts())


def test_qsettings_store_round_trips_shortcuts():
    from RefSAM3DSlicerLib.settings import QSettingsStore, RefSAM3DSettings

    class StringSettings(dict):  # QSettings on some platforms hands every value back as a string
        def contains(self, key):
            return key in self

        def value(self, key):
            return str(self[key])

        def setValue(self, key, value):  # noqa: N802 - Qt's name
            self[key] = value

    store = QSettingsStore(StringSettings())
    store.save(RefSAM3DSettings(shortcuts={"include": "Q", "exclude": "W", "box": "O", "undo": "U", "new_object": "Y"}))
    assert store.load().shortcuts["new_object"] == "Y"



def test_shortcuts_never_take_the_views_own_keys():
    """A main-window shortcut would take its key from the slice views: 'b' is their previous slice, 'f' next."""
    from RefSAM3DSlicerLib.shortcuts import VIEW_KEYS, default_shortcuts, validated_shortcuts

    assert not {key.lower() for key in default_shortcuts().values()} & VIEW_KEYS
    assert default_shortcuts()["box"] == "X"
    stored_before = {"include": "I", "exclude": "E", "box": "B", "undo": "Z", "new_object": "N"}
    assert validated_shortcuts(stored_before)["box"] == "X"  # a setting saved with the old default moves off 'b'
    assert validated_shortcuts({"include": "f", "undo": "Left"}) == default_shortcuts()
    assert validated_shortcuts({"box": "O"})["box"] == "O"


def test_shortcuts_text_box_round_trips():
    from RefSAM3DSlicerLib.shortcuts import default_shortcuts, format_shortcuts, parse_shortcuts

    text = format_shortcuts(default_shortcuts())
    assert text == "include=I, exclude=E, box=X, undo=Z, new_object=N"
    assert parse_shortcuts(text) == default_shortcuts()
    assert parse_shortcuts("include = A , bogus=Q, exclude=")["include"] == "A"


def test_markup_nodes_follow_the_loop_after_undo(scene):
    from RefSAM3DSlicerLib.prompts_from_markups import box_from_roi, points_from_markups, set_box, set_points

    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    points.AddControlPointWorld(1.0, 2.0, 3.0)
    set_points(points, [(4.0, 5.0, 6.0), (7.0, 8.0, 9.5)])
    assert points_from_markups(points) == ([(4.0, 5.0, 6.0), (7.0, 8.0, 9.5)], [True, True])
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    set_box(roi, ((-1.0, 2.0, 3.0), (5.0, 4.0, 10.0)))
    assert box_from_roi(roi) == ((-1.0, 2.0, 3.0), (5.0, 4.0, 10.0))
    set_box(roi, None)
    assert box_from_roi(roi) is None
