"""What only the Slicer app can run is still checked here: the .ui, the widget's names, CMake lists, resources."""
import ast
import py_compile
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "RefSAM3DSlicer"
UI_FILE = MODULE / "Resources" / "UI" / "RefSAM3DSlicer.ui"
MODULE_FILE = MODULE / "RefSAM3DSlicer.py"


def ui_widgets() -> dict[str, str]:
    root = ElementTree.parse(UI_FILE).getroot()
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def test_ui_is_well_formed_and_uses_slicer_widgets():
    widgets = ui_widgets()
    assert widgets["RefSAM3DSlicer"] == "qMRMLWidget"
    expected = {
        "inputVolumeSelector": "qMRMLNodeComboBox", "outputSegmentationSelector": "qMRMLNodeComboBox",
        "segmentationShow3DButton": "qMRMLSegmentationShow3DButton", "promptLineEdit": "QLineEdit",
        "positivePointsPlaceWidget": "qSlicerMarkupsPlaceWidget", "negativePointsPlaceWidget": "qSlicerMarkupsPlaceWidget",
        "boxPlaceWidget": "qSlicerMarkupsPlaceWidget", "newObjectButton": "QPushButton",
        "currentObjectLabel": "QLabel", "segmentsTableView": "qMRMLSegmentsTableView",
        "editInSegmentEditorButton": "QPushButton", "exportFormatComboBox": "QComboBox", "exportButton": "QPushButton",
        "batchSequenceSelector": "qMRMLNodeComboBox", "batchButton": "QPushButton", "batchCancelButton": "QPushButton",
        "batchProgressBar": "QProgressBar", "shortcutsLineEdit": "QLineEdit",
        "segmentButton": "QPushButton", "cancelButton": "QPushButton", "undoButton": "QPushButton",
        "progressBar": "QProgressBar", "statusLabel": "QLabel", "advancedCollapsibleButton": "ctkCollapsibleButton",
        "thresholdSliderWidget": "ctkSliderWidget", "largestComponentCheckBox": "QCheckBox",
        "fillHolesCheckBox": "QCheckBox", "modelComboBox": "QComboBox", "deviceComboBox": "QComboBox",
    }
    for name, cls in expected.items():
        assert widgets.get(name) == cls, f"{name} should be a {cls}"
    root = ElementTree.parse(UI_FILE).getroot()
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used_custom = {cls for cls in widgets.values() if not cls.startswith("Q")}
    assert used_custom <= declared, f"custom widgets without a declaration: {used_custom - declared}"


def test_ui_connections_name_real_widgets():
    root = ElementTree.parse(UI_FILE).getroot()
    widgets = ui_widgets()
    for connection in root.iter("connection"):
        assert connection.findtext("sender") in widgets
        assert connection.findtext("receiver") in widgets


def test_every_ui_name_the_widget_uses_exists():
    for path in (MODULE_FILE, *sorted((MODULE / "RefSAM3DSlicerUI").glob("*_panel.py"))):  # the widget, its mixins
        used = set(re.findall(r"self\.ui\.(\w+)", path.read_text(encoding="utf-8")))
        assert used, f"{path.name} should use the .ui"
        missing = used - set(ui_widgets())
        assert not missing, f"{path.name} uses widgets the .ui does not define: {sorted(missing)}"


def test_module_file_compiles_and_has_the_four_slicer_classes(tmp_path):
    py_compile.compile(str(MODULE_FILE), cfile=str(tmp_path / "module.pyc"), doraise=True)
    tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
    classes = {node.name: [ast.unparse(base) for base in node.bases]
               for node in tree.body if isinstance(node, ast.ClassDef)}
    assert classes["RefSAM3DSlicer"] == ["ScriptedLoadableModule"]
    assert "ScriptedLoadableModuleWidget" in classes["RefSAM3DSlicerWidget"]
    assert classes["RefSAM3DSlicerLogic"][0] == "ScriptedLoadableModuleLogic"
    assert classes["RefSAM3DSlicerTest"] == ["ScriptedLoadableModuleTest"]


def test_helper_package_never_imports_qt():
    for path in (MODULE / "RefSAM3DSlicerLib").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"qt", "ctk", "PythonQt", "slicer.ScriptedLoadableModule"}, \
                    f"{path.name} imports {name}"
                assert name != "slicer.ScriptedLoadableModule"


def cmake_list(variable: str) -> list[str]:
    text = (MODULE / "CMakeLists.txt").read_text(encoding="utf-8")
    body = re.search(rf"set\({variable}\n(.*?)\n\s*\)", text, re.DOTALL).group(1)
    return [line.strip().replace("${MODULE_NAME}", "RefSAM3DSlicer") for line in body.splitlines() if line.strip()]


def test_cmake_lists_every_module_file_and_resource():
    scripts = set(cmake_list("MODULE_PYTHON_SCRIPTS"))
    on_disk = {p.relative_to(MODULE).as_posix() for p in MODULE.rglob("*.py") if "__pycache__" not in p.parts}
    assert scripts == on_disk
    resources = set(cmake_list("MODULE_PYTHON_RESOURCES"))
    resource_files = {p.relative_to(MODULE).as_posix() for p in (MODULE / "Resources").rglob("*") if p.is_file()}
    assert resources == resource_files


def test_extension_metadata():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                     "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(rf'set\({variable} "[^"]', text), f"{variable} is missing or empty"
    assert "add_subdirectory(RefSAM3DSlicer)" in text
    assert "include(${Slicer_EXTENSION_CPACK})" in text


def test_icon_is_a_128_pixel_png():
    PIL = pytest.importorskip("PIL.Image")
    with PIL.open(MODULE / "Resources" / "Icons" / "RefSAM3DSlicer.png") as image:
        assert image.format == "PNG" and image.size == (128, 128)
