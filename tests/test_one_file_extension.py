"""Adding an operation is one file in core/catalog; every front end offers the same set.

A module written into a folder on the catalog's path (as a newcomer adds
``src/napari_deconvnet/core/catalog/<name>.py``) is discovered the first
time specs are listed, and the API, the command line and the Restore widget
then offer it with its parameters and defaults. The widget and the command
line offer the same methods with the same defaults.
"""

import json
import sys
import textwrap

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.cli import main
from napari_deconvnet.core import catalog, specs

MODULE = "invert_for_test"
SOURCE = '''
"""Invert intensities around a top value (a newcomer's one-file method)."""

from napari_deconvnet.core.specs import Param, Spec, register


def invert(image, *, top=1.0):
    return top - image


register(
    Spec(
        "method",
        "invert-for-test",
        "Invert intensities around a top value.",
        params=(Param("top", "float", 1.0, low=0.0, label="Top", help="Value black maps to"),),
        function=invert,
        kind="classical",
        ndim=(2,),
    )
)
'''


@pytest.fixture
def one_new_file(tmp_path, monkeypatch):
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.setattr(catalog, "__path__", [*catalog.__path__, str(tmp_path)])
    monkeypatch.setattr(specs, "_DISCOVERED", False)
    yield "invert-for-test"
    specs.unregister("method", "invert-for-test")
    sys.modules.pop(f"{catalog.__name__}.{MODULE}", None)


def test_a_new_catalog_file_is_offered_by_the_api_and_the_cli(one_new_file, tmp_path, capsys):
    name = one_new_file
    assert name in dn.list_methods(models=False)
    stack = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4) / 32
    out = dn.run_method(stack, name, axes="ZYX", top=2.0)
    np.testing.assert_array_equal(out, 2.0 - stack)

    capsys.readouterr()
    assert main(["methods", "--json", "--no-models"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["method"]}
    assert listed[name]["params"][0]["default"] == 1.0

    import tifffile

    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, stack, photometric="minisblack")
    assert main(["restore", str(src), "-o", str(dst), "--method", name, "--param", "top=3"]) == 0
    np.testing.assert_allclose(tifffile.imread(dst), 3.0 - stack, atol=1e-6)


def test_the_widget_and_the_cli_offer_the_same_methods_and_defaults(
    make_napari_viewer, one_new_file, capsys
):
    from napari_deconvnet.widgets.restore import RestoreWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32), np.float32), name="img")
    widget = RestoreWidget(viewer)
    capsys.readouterr()
    assert main(["methods", "--json"]) == 0
    cli = {m["name"]: m for m in json.loads(capsys.readouterr().out)["method"]}
    shown = set(widget.method.choices)
    classical = {n for n, m in cli.items() if m["kind"] == "classical"}
    assert one_new_file in classical
    assert classical <= shown
    # every shipped model is offered (an alias such as "default" once, by its model's name)
    models = {n for n, m in cli.items() if m["kind"] == "model" and n != "default"}
    assert models <= shown
    for name in sorted(classical):
        form = widget.params.form(dn.list_methods()[name])
        defaults = {p["name"]: p["default"] for p in cli[name]["params"]}
        assert form.values() == defaults, name
