"""The npe2 manifest, and the rule that the package and its core never load Qt or napari."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name

ROOT = Path(__file__).resolve().parents[1]
GUI_MODULES = ["qtpy", "napari", "magicgui", "PyQt6", "PyQt5", "PySide6", "PySide2"]


@pytest.fixture(scope="module")
def manifest():
    return PluginManifest.from_distribution("napari-deconvnet")


def test_installed_manifest_is_the_repository_file(manifest):
    source = PluginManifest.from_file(ROOT / "napari.yaml")
    assert manifest.contributions == source.contributions
    assert manifest.name == "napari-deconvnet"
    assert manifest.display_name == "napari-deconvnet"


def test_contributions_resolve(manifest):
    manifest.validate_imports()  # every python_name imports and exists
    for command in manifest.contributions.commands:
        assert re.fullmatch(r"napari-deconvnet\.[a-z]+(_[a-z0-9]+)+", command.id), command.id
        assert command.python_name.startswith("napari_deconvnet.widgets.") or (
            command.python_name.startswith("napari_deconvnet.io.")
        )
    widgets = {w.display_name: w.command for w in manifest.contributions.widgets}
    assert widgets["Restore"] == "napari-deconvnet.make_restore_widget"
    assert widgets["Train"] == "napari-deconvnet.make_train_widget"
    assert widgets["Noise"] == "napari-deconvnet.make_noise_widget"
    assert widgets["Quality"] == "napari-deconvnet.make_quality_widget"
    menu = manifest.contributions.menus["napari/layers/filter"]
    assert [item.command for item in menu][:2] == [
        "napari-deconvnet.make_restore_widget",
        "napari-deconvnet.make_noise_widget",
    ]
    measure = manifest.contributions.menus["napari/layers/measure"]
    assert [item.command for item in measure] == ["napari-deconvnet.make_quality_widget"]


def test_sample_data_gives_noisy_and_clean_layers(manifest):
    (sample,) = [s for s in manifest.contributions.sample_data if s.key == "noisy_camera"]
    assert sample.display_name == "Noisy camera (Gaussian sigma=25/255)"
    (command,) = [c for c in manifest.contributions.commands if c.id == sample.command]
    make_sample = import_python_name(command.python_name)
    layers = make_sample()
    assert [(meta["name"], kind) for _, meta, kind in layers] == [
        ("camera noisy", "image"),
        ("camera clean", "image"),
    ]
    (noisy, _, _), (clean, _, _) = layers
    assert noisy.dtype == clean.dtype == np.float32 and noisy.shape == clean.shape == (512, 512)
    np.testing.assert_array_equal(noisy, make_sample()[0][0])  # seeded
    assert abs(float(np.std(noisy - clean)) - 25 / 255) < 0.005


@pytest.mark.parametrize("module", ["napari_deconvnet", "napari_deconvnet.core"])
def test_import_loads_no_gui(module):
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps(sorted(m for m in {GUI_MODULES!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
