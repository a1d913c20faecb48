"""benchmarks/restore_speed.py --against REV --near-threshold: its cases."""

import json

import numpy as np


def test_phantom_inputs_are_the_quality_tasks_degradations(benchmark_script):
    speed = benchmark_script("restore_speed")
    quality = benchmark_script("quality")
    inputs = speed._inputs_near_threshold()
    assert list(inputs) == [
        "denoise-2d@poisson-gaussian-100",
        "denoise-2d@gaussian-15",
        "deconv-2d@deconv-airy-poisson",
        "deconv-2d@deconv-airy-poisson, dark sides",
    ]
    names = [t.name for t in quality.TASKS]
    dark, psf = inputs.pop("deconv-2d@deconv-airy-poisson, dark sides")
    # the same scene blurred with nothing beyond the frame: its sides dark, as the
    # restore finds them, at the task's photon count (Poisson counts over 200)
    from napari_deconvnet.core.borders import find_borders

    sides, _, _ = find_borders(dark[None], psf, "auto")
    assert any(any(pair) for pair in sides)
    assert np.allclose(dark * 200, np.round(dark * 200), atol=1e-3)
    for key, (image, psf) in inputs.items():
        task = quality.TASKS[names.index(key.split("@")[1])]
        clean = quality.load_test_set(task.data, quality.FULL)[0][1]
        side = 512 if task.data == "photos" else 256
        assert image.shape == clean.shape == (side, side) and image.dtype == np.float32
        # the benchmark's own degradation of its first test image, with its seed
        rng = np.random.default_rng([0, names.index(task.name), 0, 0])
        expected = quality.degrade(task, clean, rng, task.make_psf())
        np.testing.assert_array_equal(image, np.asarray(expected, np.float32))
        assert (psf is None) == (task.psf is None)


def test_a_child_restores_a_small_image_several_times_with_its_psf(benchmark_script, tmp_path):
    speed = benchmark_script("restore_speed")
    import napari_deconvnet as dn

    image, psf = speed._inputs_near_threshold()["deconv-2d@deconv-airy-poisson"]
    image = image[:64, :64]
    np.save(tmp_path / "x.input.npy", image)
    np.save(tmp_path / "x.psf.npy", psf)
    dn.save_model(dn.load_model("deconv-2d"), tmp_path / "w.safetensors")
    import torch

    threads = torch.get_num_threads()  # the child sets one thread, for its own process
    try:
        record = speed._restore_child(
            "deconv-2d", str(tmp_path / "w.safetensors"), str(tmp_path / "x.input.npy"),
            str(tmp_path / "out.npy"), "float32",
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert json.loads(json.dumps(record))["voxels"] == 64 * 64 and record["seconds"] > 0
    # restored with the saved PSF (an Airy disk), not the benchmark's default Gaussian
    expected = dn.restore(image, "deconv-2d", psf=psf, device="cpu", precision="float32")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)
