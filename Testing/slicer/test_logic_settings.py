"""Preferences persist through JSON or a QSettings-like store and survive damaged values."""
import json

import pytest

pytest.importorskip("slicer")


def test_json_round_trip(tmp_path):
    from RefSAM3DSlicerLib import JsonSettingsStore, RefSAM3DSettings

    store = JsonSettingsStore(tmp_path / "sub" / "settings.json")
    assert store.load() == RefSAM3DSettings()
    wanted = RefSAM3DSettings(model="/models/mine.pt", device="cpu", threshold=0.4, largest_component=True,
                              recent_prompts=["liver"])
    store.save(wanted)
    assert store.load() == wanted


def test_damaged_values_fall_back_to_defaults(tmp_path):
    from RefSAM3DSlicerLib import JsonSettingsStore, RefSAM3DSettings

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"device": "quantum", "threshold": 7, "undo_depth": "many", "fill_holes": "yes",
                                "unknown": 1}))
    loaded = JsonSettingsStore(path).load()
    defaults = RefSAM3DSettings()
    assert (loaded.device, loaded.threshold, loaded.undo_depth) == (defaults.device, defaults.threshold,
                                                                    defaults.undo_depth)
    assert loaded.fill_holes is True
    path.write_text("{ not json")
    assert JsonSettingsStore(path).load() == defaults


class FakeQSettings:
    """What Qt's QSettings gives back on some platforms: every value as a string."""

    def __init__(self):
        self.values = {}

    def contains(self, key):
        return key in self.values

    def value(self, key):
        return self.values[key]

    def setValue(self, key, value):
        self.values[key] = str(value).lower() if isinstance(value, bool) else str(value)


def test_qsettings_store_restores_types():
    from RefSAM3DSlicerLib import QSettingsStore, RefSAM3DSettings

    qsettings = FakeQSettings()
    wanted = RefSAM3DSettings(device="cuda", threshold=0.35, fill_holes=True, undo_depth=4,
                              recent_prompts=["left kidney", "liver"])
    QSettingsStore(qsettings).save(wanted)
    assert "RefSAM3D/threshold" in qsettings.values
    assert QSettingsStore(qsettings).load() == wanted


def test_recent_prompts_are_remembered_most_recent_first(make_logic, make_volume, make_segmentation):
    from RefSAM3DSlicerLib.choices import prompt_completions

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    logic.segment(volume, segmentation, text="liver; my odd structure")
    logic.segment(volume, segmentation, text="Liver")
    assert logic.settings.recent_prompts[:2] == ["Liver", "my odd structure"]
    completions = prompt_completions(logic.settings.recent_prompts)
    assert completions[0] == "Liver" and "left kidney" in completions
    assert len({c.lower() for c in completions}) == len(completions)


def test_model_and_device_choices():
    from RefSAM3DSlicerLib.choices import device_choices, model_choices

    names = [choice.name for choice in model_choices()]
    assert names[0] == "refsam3d-lite" and "sam-vit-b" not in names
    assert device_choices() == ("auto", "cuda", "cpu")


def test_compute_on_a_server_settings_round_trip_and_the_token_is_never_shown(tmp_path, caplog):
    import logging

    from RefSAM3DSlicerLib import ComputeTarget, InputError, JsonSettingsStore, RefSAM3DSettings
    from RefSAM3DSlicerLib.settings import settings_from_dict

    secret = "a-secret-token-0123456789"
    settings = RefSAM3DSettings(compute="server", server_url="gpu-server:8765/", server_token=secret)
    store = JsonSettingsStore(tmp_path / "settings.json")
    store.save(settings)
    assert store.load() == settings
    target = ComputeTarget.from_settings(settings)
    assert target.remote and target.server_url == "http://gpu-server:8765" and target.token == secret
    assert secret not in repr(settings) and secret not in repr(target)
    with caplog.at_level(logging.WARNING):
        damaged = settings_from_dict({"compute": "cloud", "server_token": "not a token " + secret})
    assert damaged.compute == "local" and damaged.server_token == ""
    assert secret not in caplog.text and "server_token=(hidden)" in caplog.text
    for url, words in (("", "enter the RefSAM3D server's address"), ("ftp://host", "use http:// or https://"),
                       ("http://user:pw@host:1", "must not hold a user name or token")):
        with pytest.raises(InputError, match=words):
            ComputeTarget.from_settings(RefSAM3DSettings(compute="server", server_url=url))
    assert not ComputeTarget.from_settings(RefSAM3DSettings()).remote
