"""The spec registry: Param and Spec, and operations added in a test alone.

A classical method, a noise model and a PSF kind registered here (and only
here) are offered by dn.list_*, run through the Python API and through the
command line, with no other edit: adding an operation is one declaration.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tifffile

import napari_deconvnet as dn
from napari_deconvnet.cli import main
from napari_deconvnet.core import specs
from napari_deconvnet.core.model_specs import MODEL_PARAMS
from napari_deconvnet.core.specs import Param, Spec

# ------------------------------------------------------------------ Param


def test_param_checks_types_and_ranges():
    p = Param("sigma", "float", 0.1, low=0.0, high=2.0)
    assert p.check(1) == 1.0 and isinstance(p.check(1), float)
    assert p.check("0.5") == 0.5  # text is parsed, as the command line passes it
    with pytest.raises(ValueError, match="sigma must be >= 0.0 and <= 2.0, not 3"):
        p.check(3)
    with pytest.raises(TypeError, match="sigma must be a number"):
        p.check("wide")
    with pytest.raises(ValueError, match="finite"):
        p.check(float("nan"))
    with pytest.raises(ValueError, match="cannot be None"):
        p.check(None)
    one_sided = Param("width", "float", 1.0, low=0.0)
    with pytest.raises(ValueError, match="width must be >= 0.0, not -1"):
        one_sided.check(-1)


def test_param_kinds_parse_auto_and_tuples():
    auto = Param("balance", "float", None, low=0.0, optional=True)
    assert auto.parse("auto") is None and auto.parse("none") is None and auto.check(None) is None
    assert auto.parse("0.25") == 0.25
    n = Param("iterations", "int", 30, low=1)
    assert n.parse("12") == 12 and isinstance(n.parse("12"), int)
    with pytest.raises(ValueError, match="whole number"):
        n.check(2.5)
    sig = Param("sigma", "floats", 1.0, low=0.0)
    assert sig.parse("2,1.5,1.5") == (2.0, 1.5, 1.5) == sig.parse("2x1.5x1.5")
    flag = Param("clip", "bool", False)
    assert flag.parse("yes") is True and flag.parse("off") is False
    with pytest.raises(ValueError, match="true or false"):
        flag.parse("maybe")
    pick = Param("mode", "choice", "soft", choices=("soft", "hard"))
    with pytest.raises(ValueError, match=r"mode must be one of \['soft', 'hard'\]"):
        pick.check("medium")


def test_param_declaration_errors():
    with pytest.raises(ValueError, match="kind"):
        Param("x", "complex", 1.0)
    with pytest.raises(ValueError, match="optional"):
        Param("x", "float", None)
    with pytest.raises(ValueError, match="choices"):
        Param("x", "choice", "a")
    with pytest.raises(ValueError, match="must be >= 0.0 and <= 1.0"):
        Param("x", "float", 5.0, low=0.0, high=1.0)  # a default out of its own range


def test_spec_check_names_the_accepted_parameters_and_aliases():
    spec = Spec(
        "noise",
        "test-counts",
        "Counts.",
        params=(Param("peak", "float", 100.0, low=0.0, exclusive_low=True, aliases=("gain",)),),
        function=lambda clean, rng, peak=100.0: clean,
    )
    assert spec.check({"gain": "30"}) == {"peak": 30.0}
    assert spec.check({}, fill=True) == {"peak": 100.0}
    with pytest.raises(ValueError, match=r"does not take 'sigma'; its parameters are \['peak'\]"):
        spec.check({"sigma": 1})
    with pytest.raises(ValueError, match="either peak or gain, not both"):
        spec.check({"peak": 1, "gain": 2})
    with pytest.raises(ValueError, match=r"peak \(alias gain\) must be > 0.0, not 0"):
        spec.check({"peak": 0})
    with pytest.raises(ValueError, match="gain must be > 0.0, not 0 .gain is another name of"):
        spec.check({"gain": 0})
    assert spec.param("peak").range_text() == "(0, inf]"
    assert specs.parse_params(spec, ["gain=5"]) == {"peak": 5.0}
    with pytest.raises(ValueError, match="name=value"):
        specs.parse_params(spec, ["gain"])
    with pytest.raises(ValueError, match="repeats a parameter"):
        Spec("noise", "bad", "", params=(Param("a", "float", 1.0), Param("a", "int", 1)))


def test_registry_errors_list_the_names():
    with pytest.raises(ValueError, match="accepted names are.*'poisson-gaussian'"):
        specs.get("noise", "pink")
    with pytest.raises(ValueError, match="family must be one of"):
        specs.specs("filters")
    with pytest.raises(ValueError, match="already registered"):
        specs.register(Spec("noise", "gaussian", "another", function=lambda c, r: c))
    with pytest.raises(TypeError, match="takes a Spec"):
        specs.register({"name": "x"})


def test_unavailable_operations_are_hidden_and_explained():
    spec = Spec(
        "method",
        "needs-missing",
        "Needs a package that is not installed.",
        function=lambda image: image,
        kind="classical",
        requires=("a_package_that_does_not_exist",),
    )
    specs.register(spec)
    try:
        assert "needs-missing" not in dn.list_methods(models=False)
        with pytest.raises(ValueError, match="needs a_package_that_does_not_exist"):
            specs.get("method", "needs-missing")
    finally:
        specs.unregister("method", "needs-missing")


# --------------------------------------- operations registered in a test alone


def _demean(image, *, factor=1.0):
    """A test method: each plane minus `factor` times its own mean."""
    return image - factor * image.mean()


@pytest.fixture
def demean():
    spec = specs.register(
        Spec(
            "method",
            "demean",
            "Subtract a fraction of each plane's mean (a test method).",
            params=(Param("factor", "float", 1.0, low=0.0, high=1.0),),
            function=_demean,
            kind="classical",
            ndim=(2,),
        )
    )
    try:
        yield spec
    finally:
        specs.unregister("method", "demean")


def _uniform(clean, rng, *, width=0.5):
    """A test noise model: additive uniform noise in [-width, width) (numpy only)."""
    return clean + rng.uniform(-width, width, np.shape(clean))


@pytest.fixture
def uniform():
    specs.register(
        Spec(
            "noise",
            "uniform-test",
            "Additive uniform noise (a test model).",
            params=(Param("width", "float", 0.5, low=0.0),),
            function=_uniform,
        )
    )
    try:
        yield
    finally:
        specs.unregister("noise", "uniform-test")


def _box(shape=None, *, size=3):
    """A test PSF kind: a size x size box (unnormalised)."""
    return np.ones(shape or (size, size))


@pytest.fixture
def box():
    specs.register(
        Spec(
            "psf",
            "box",
            "A flat square (a test PSF).",
            params=(Param("size", "int", 3, low=1, high=31),),
            function=_box,
            ndim=(2,),
        )
    )
    try:
        yield
    finally:
        specs.unregister("psf", "box")


def _stack(shape=(3, 20, 24), seed=0):
    return np.random.default_rng(seed).normal(10, 2, shape).astype(np.float32)


def test_a_method_registered_in_a_test_runs_plane_by_plane(demean):
    assert "demean" in dn.list_methods(models=False)
    assert "demean" in dn.list_methods()
    stack = _stack()
    steps = []
    out = dn.run_method(
        stack, "demean", axes="ZYX", factor=0.5, progress=lambda d, t: steps.append((d, t))
    )
    expected = stack - 0.5 * stack.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.dtype == np.float32 and steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    with pytest.raises(ValueError, match="factor must be >= 0.0 and <= 1.0"):
        dn.run_method(stack, "demean", factor=2)
    with pytest.raises(ValueError, match=r"its parameters are \['factor'\]"):
        dn.run_method(stack, "demean", size=3)
    with pytest.raises(ValueError, match="takes no PSF"):
        dn.run_method(stack, "demean", psf="gaussian")


def test_a_method_registered_in_a_test_runs_from_the_command_line(demean, tmp_path, capsys):
    stack = _stack()
    tifffile.imwrite(tmp_path / "in.tif", stack, photometric="minisblack")
    out = tmp_path / "out.tif"
    argv = ["restore", str(tmp_path / "in.tif"), "-o", str(out), "--axes", "ZYX"]
    assert main([*argv, "--method", "demean", "--param", "factor=0.25"]) == 0
    expected = stack - 0.25 * stack.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(tifffile.imread(out), expected, atol=1e-6)
    from napari_deconvnet.io.reader import read_image

    record = read_image(out).metadata["napari_deconvnet"]
    assert record["method"] == "demean" and record["params"] == {"factor": 0.25}
    assert record["operation"] == "restore" and record["axes"] == "ZYX"
    # the methods command lists it with its parameter, default and range
    capsys.readouterr()
    assert main(["methods", "method", "--no-models"]) == 0
    listing = capsys.readouterr().out
    assert "demean [classical]" in listing and "factor=1.0  float [0, 1]" in listing
    # bad parameters are usage errors naming the accepted ones
    assert main([*argv, "--overwrite", "--method", "demean", "--param", "size=3"]) == 2
    assert "its parameters are ['factor']" in capsys.readouterr().err


def test_a_noise_model_registered_in_a_test_synthesizes(uniform, tmp_path):
    assert "uniform-test" in dn.list_noise_models()
    from napari_deconvnet.core.noise import NOISE_MODELS

    assert NOISE_MODELS["uniform-test"] == {"width": 0.5}  # the old table follows the specs
    clean = np.full((128, 128), 2.0, np.float32)
    noisy = dn.synthesize(clean, "uniform-test", width=0.3, seed=0)
    assert noisy.dtype == np.float32
    residual = noisy.astype(np.float64) - 2.0
    assert abs(residual.mean()) < 0.005
    assert residual.var() == pytest.approx(0.3**2 / 3, rel=0.03)
    assert residual.min() >= -0.3 and residual.max() < 0.3 + 1e-6
    with pytest.raises(ValueError, match="width must be >= 0.0"):
        dn.synthesize(clean, "uniform-test", width=-1)
    # the command line: --noise NAME --param k=v
    tifffile.imwrite(tmp_path / "clean.tif", clean[:32, :40])
    out = tmp_path / "noisy.tif"
    argv = ["synthesize", str(tmp_path / "clean.tif"), "-o", str(out), "--seed", "4"]
    assert main([*argv, "--noise", "uniform-test", "--param", "width=0.2"]) == 0
    expected = dn.synthesize(clean[:32, :40], "uniform-test", width=0.2, seed=4)
    np.testing.assert_array_equal(tifffile.imread(out), expected)


def test_a_psf_kind_registered_in_a_test_deconvolves(box, tmp_path):
    assert "box" in dn.list_psfs()
    np.testing.assert_allclose(dn.make_psf("box", size=3), np.full((3, 3), 1 / 9), atol=1e-7)
    assert dn.make_psf("box", (5, 5)).shape == (5, 5)
    with pytest.raises(ValueError, match="size must be >= 1 and <= 31"):
        dn.make_psf("box", size=0)
    image = dn.synthesize(_stack((40, 40)), None, psf=np.ones((3, 3)))
    expected = dn.richardson_lucy(image, np.ones((3, 3)), 5, device="cpu")
    out = dn.run_method(image, "richardson-lucy", psf="box", iterations=5, device="cpu")
    np.testing.assert_allclose(out, expected, atol=1e-6)
    tifffile.imwrite(tmp_path / "blurred.tif", image)
    result = tmp_path / "sharp.tif"
    argv = ["restore", str(tmp_path / "blurred.tif"), "-o", str(result), "--device", "cpu"]
    argv += ["--method", "richardson-lucy", "--param", "iterations=5"]
    assert main([*argv, "--psf", "box", "--psf-param", "size=3"]) == 0
    np.testing.assert_allclose(tifffile.imread(result), expected, atol=1e-6)


# ------------------------------------- declared defaults equal the functions'


def _builtins():
    for family in specs.FAMILIES:
        for spec in specs.specs(family, available=False).values():
            if isinstance(spec.function, str) and spec.function.startswith("napari_deconvnet."):
                yield spec


@pytest.mark.parametrize("spec", list(_builtins()), ids=lambda s: f"{s.family}-{s.name}")
def test_declared_defaults_equal_the_functions_defaults(spec):
    """Editing a default in the catalog and not in the function (or back) fails here."""
    signature = inspect.signature(spec.resolve())
    compared = 0
    for param in spec.params:
        own = signature.parameters.get(param.name)
        assert own is not None, f"{spec.name}: the function does not take {param.name!r}"
        if own.default is inspect.Parameter.empty:
            continue
        assert (
            param.default == param.check(own.default)
            if own.default is not None
            else (param.default is None)
        ), f"{spec.family} {spec.name!r}: {param.name} is {param.default!r} in the spec"
        compared += 1
    assert compared == len(spec.params), f"{spec.name}: parameters without a default"


def test_model_parameters_are_restores_keywords():
    signature = inspect.signature(dn.restore)
    for param in MODEL_PARAMS:
        assert signature.parameters[param.name].default == param.default


def test_every_builtin_is_listed_with_a_description():
    methods = dn.list_methods(models=False)
    assert {"richardson-lucy", "wiener", "nlm", "tv", "median", "switching-median"} <= set(methods)
    assert set(dn.list_noise_models()) >= {"gaussian", "poisson", "none"}
    assert list(dn.list_psfs())[:3] == ["gaussian", "airy", "widefield"]
    for family in specs.FAMILIES:
        for spec in specs.specs(family).values():
            assert spec.description and all(p.help for p in spec.params), spec.name
