"""Noise that neighbouring pixels share, through the shipped ``denoise-2d``.

Images are often resampled after acquisition: registered (drift-corrected
time-lapses, aligned channels), deskewed, upscaled, or filtered by a
camera's pipeline. Interpolation averages neighbouring pixels' noise, so the
noise is no longer white, and a denoiser trained on white noise takes it for
structure. ``dn.restore(..., decorrelate=True)`` screens each gray image and
restores it pixel-shuffled where that pays
(:mod:`napari_deconvnet.core.decorrelate`; off by default).

Held-out scenes: centre crops (256²) of the quality benchmark's six test
photos, and two fluorescence phantoms (``psf_shapes.py``'s, test seeds 71
and 72). Degradations (seeded per scene):

``white``
    Gaussian noise of the given sigma (the control: nothing may change).
``smoothed 0.5`` / ``smoothed 0.7``
    White noise smoothed by a Gaussian of 0.5 / 0.7 pixels, rescaled to the
    given sigma (a camera's or a filter's correlation).
``registered``
    The noisy image shifted by a fraction of a pixel along Y and X (0.3-0.7,
    linear interpolation); the reference is the clean image shifted alike.
``upscaled 2x``
    The noisy image at half the resolution (every second pixel), upscaled
    twice (linear); the reference is the clean image.

Photos get Gaussian noise of sigma 10 and 25 (of 255); the phantoms Poisson
noise at 20 and 100 photons. Columns: the input; ``denoise-2d`` by default
(as earlier releases); with ``decorrelate=True``; and the pixel-shuffled
restore taken always (the choice's ceiling and its cost).

``--colour``: RGB images through ``denoise-2d`` (restored as luminance and
chroma), each screened as one image by its samples' mean: centre crops
(256²) of the test photos that are colour (astronaut, chelsea), the same
degradations with noise drawn for each colour on its own, and
``demosaiced``: a colour camera's raw image (one colour per pixel, in a
Bayer RGGB pattern) with Gaussian noise, interpolated to three colours
(bilinear, each colour from its own samples), which shares the noise between
neighbours.
The thresholds are the gray ones, not chosen again.

``--volumes``: z-stacks through ``denoise-3d``, each volume screened by its
planes' mean and restored as the four sub-volumes of every second pixel
along Y and X: the quality benchmark's test volumes (32x128x128, seeds 9101
and 9102), Poisson noise at 20 and 100 photons, white; smoothed within the
planes (0.7 px) or in 3D (0.7 px along each axis); registered (the noisy
volume shifted by 0.3-0.7 pixels along Y and X, linear); and ``one axis``:
smoothed along X by 0.8 px and Z by 0.5 px, as a deskew's interpolation
leaves it. The thresholds are the gray photos' ones.

``--choose`` is how the decision's thresholds were chosen, on validation
photos only (scikit-image's coffee, rocket, immunohistochemistry, brick,
grass, text and Hubble deep field; the same degradations, Gaussian sigma 5,
10, 15 and 25, and the clean photos): for each screened case both restores'
PSNR and residuals, then every pair of (residual ratio, least residual) on a
grid; the pair with the best mean PSNR wins, the more cautious one (fewer
images restored pixel-shuffled) within 0.005 dB.

Usage::

    python benchmarks/correlated_noise.py --threads 1 --markdown out.md
    python benchmarks/correlated_noise.py --quick
    python benchmarks/correlated_noise.py --colour --threads 1 --markdown colour.md
    python benchmarks/correlated_noise.py --volumes --threads 1 --markdown volumes.md
    python benchmarks/correlated_noise.py --choose --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

from _machine import machine, report, set_threads  # noqa: E402
from psf_shapes import TEST_PHOTOS, TEST_SEEDS, _crop, _phantom, _photo  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.decorrelate import assemble, shuffled  # noqa: E402

SIDE = 256
KINDS = ("white", "smoothed 0.5", "smoothed 0.7", "registered", "upscaled 2x")
SIGMAS = (10.0, 25.0)  # photos, of 255
PHOTONS = (20.0, 100.0)  # phantoms


def scenes(quick: bool) -> list[tuple[str, np.ndarray]]:
    photos = TEST_PHOTOS[:2] if quick else TEST_PHOTOS
    out = [(name, _crop(_photo(name), SIDE)) for name in photos]
    seeds = TEST_SEEDS[:1] if quick else TEST_SEEDS
    return out + [(f"phantom {seed}", _phantom(seed, SIDE)) for seed in seeds]


def _noise(clean: np.ndarray, level: float, photo: bool, rng: np.random.Generator) -> np.ndarray:
    if photo:
        return rng.normal(0.0, level / 255, clean.shape)
    return rng.poisson(clean * level) / level - clean


def _shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.shift(image, (dy, dx), order=1, mode="reflect")


def degrade(
    clean: np.ndarray, kind: str, level: float, photo: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(reference, degraded) for one scene, degradation and noise level."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    if kind == "white":
        return clean, clean + _noise(clean, level, photo, rng)
    if kind.startswith("smoothed"):
        noise = _noise(clean, level, photo, rng)
        smooth = ndimage.gaussian_filter(noise, float(kind.split()[1]))
        return clean, clean + smooth * (noise.std() / smooth.std())
    if kind == "registered":
        dy, dx = rng.uniform(0.3, 0.7, 2)
        noisy = clean + _noise(clean, level, photo, rng)
        return _shift(clean, dy, dx), _shift(noisy, dy, dx)
    half = clean[::2, ::2]
    noisy = half + _noise(half, level, photo, rng)
    grid = np.meshgrid(*(np.arange(n) / 2 for n in clean.shape), indexing="ij")
    return clean, ndimage.map_coordinates(noisy, grid, order=1, mode="nearest")


#: RGB test photos of ``--colour``, and its degradations
COLOUR_PHOTOS = ("astronaut", "chelsea")
COLOUR_KINDS = (*KINDS, "demosaiced")


def colour_scenes(quick: bool) -> list[tuple[str, np.ndarray]]:
    from skimage import data

    out = []
    for name in COLOUR_PHOTOS[:1] if quick else COLOUR_PHOTOS:
        image = getattr(data, name)()[..., :3].astype(np.float64) / 255
        top, left = [max(0, (n - SIDE) // 2) for n in image.shape[:2]]
        out.append((name, np.ascontiguousarray(image[top : top + SIDE, left : left + SIDE])))
    return out


def demosaiced(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A Bayer (RGGB) raw image of `clean` with Gaussian noise of `sigma` (of 255),
    interpolated back to three colours bilinearly."""
    from scipy import ndimage

    h, w, _ = clean.shape
    colour = np.zeros((h, w), int)  # 0 red, 1 green, 2 blue
    colour[0::2, 1::2] = colour[1::2, 0::2] = 1
    colour[1::2, 1::2] = 2
    raw = np.choose(colour, np.moveaxis(clean, -1, 0)) + rng.normal(0, sigma / 255, (h, w))
    weights = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    out = np.empty_like(clean)
    for c in range(3):
        sampled = (colour == c).astype(float)
        found = ndimage.convolve(raw * sampled, weights, mode="mirror")
        out[..., c] = found / ndimage.convolve(sampled, weights, mode="mirror")
    return out


def degrade_colour(
    clean: np.ndarray, kind: str, level: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(reference, degraded) for one RGB scene: :func:`degrade` colour by colour (a
    registration shifts the three alike), or a demosaiced raw image."""
    if kind == "demosaiced":
        return clean, demosaiced(clean, level, np.random.default_rng(seed))
    if kind == "registered":  # one shift for the three colours, each its own noise
        rng = np.random.default_rng(seed)
        dy, dx = rng.uniform(0.3, 0.7, 2)
        noisy = clean + rng.normal(0.0, level / 255, clean.shape)
        reference = np.stack([_shift(clean[..., c], dy, dx) for c in range(3)], -1)
        return reference, np.stack([_shift(noisy[..., c], dy, dx) for c in range(3)], -1)
    pairs = [degrade(clean[..., c], kind, level, True, seed + 101 * c) for c in range(3)]
    return np.stack([p[0] for p in pairs], -1), np.stack([p[1] for p in pairs], -1)


def run_colour(quick: bool) -> list[dict]:
    rows = []
    for s, (name, clean) in enumerate(colour_scenes(quick)):
        for kind in ("white", "smoothed 0.7", "demosaiced") if quick else COLOUR_KINDS:
            for level in SIGMAS[1:] if quick else SIGMAS:
                reference, noisy = degrade_colour(clean, kind, level, seed=2000 + 17 * s)
                rows.append(_row(name, kind, level, True, reference, noisy))
    return rows


#: ``--volumes``: test volumes (the quality benchmark's seeds), degradations, photons
VOLUME_SEEDS = (9101, 9102)
VOLUME_KINDS = ("white", "smoothed planes", "smoothed 3D", "registered", "one axis")
VOLUME_SHAPE = (32, 128, 128)


def degrade_volume(
    clean: np.ndarray, kind: str, photons: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(reference, degraded) for one volume: Poisson noise, then the correlation."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    noise = rng.poisson(clean * photons) / photons - clean
    widths = {"smoothed planes": (0, 0.7, 0.7), "smoothed 3D": (0.7,) * 3}
    widths["one axis"] = (0.5, 0, 0.8)
    if kind in widths:
        smooth = ndimage.gaussian_filter(noise, widths[kind])
        return clean, clean + smooth * (noise.std() / smooth.std())
    if kind == "registered":
        dy, dx = rng.uniform(0.3, 0.7, 2)

        def shift(volume: np.ndarray) -> np.ndarray:
            return ndimage.shift(volume, (0, dy, dx), order=1, mode="reflect")

        return shift(clean), shift(clean + noise)
    return clean, clean + noise


def run_volumes(quick: bool) -> list[dict]:
    from napari_deconvnet.io.samples import phantom_volume_data

    rows = []
    shape = (16, 64, 64) if quick else VOLUME_SHAPE
    for s, seed in enumerate(VOLUME_SEEDS[:1] if quick else VOLUME_SEEDS):
        clean = phantom_volume_data(shape, seed)[1].astype(np.float64)
        clean /= clean.max()
        for kind in VOLUME_KINDS[:2] if quick else VOLUME_KINDS:
            for level in PHOTONS[:1] if quick else PHOTONS:
                reference, noisy = degrade_volume(clean, kind, level, seed=3000 + 17 * s)
                name = f"volume {seed}"
                rows.append(_row(name, kind, level, False, reference, noisy, "denoise-3d"))
    return rows


def psnr(reference: np.ndarray, out: np.ndarray) -> float:
    return float(dn.psnr(reference, np.clip(out, 0, 1), data_range=1))


def always_shuffled(noisy: np.ndarray, model: str = "default") -> np.ndarray:
    """The pixel-shuffled restore whatever the screen says (a volume's: along Y and X)."""
    start = 1 if model == "denoise-3d" else 0
    parts = [dn.restore(part, model, decorrelate=False) for part in shuffled(noisy, start=start)]
    return assemble(parts, noisy.shape, start=start)


def _row(name, kind, level, photo, reference, noisy, model="default") -> dict:
    """One scene's record: the input, the restore by default, with decorrelate=True
    and pixel-shuffled always."""
    noisy = noisy.astype(np.float32)
    before = dn.restore(noisy, model)
    now = dn.restore(noisy, model, decorrelate=True)
    row = dict(scene=name, kind=kind, level=level, photo=photo)
    row |= dict(input=psnr(reference, noisy), before=psnr(reference, before))
    row |= dict(now=psnr(reference, now), shuffled=psnr(reference, always_shuffled(noisy, model)))
    row["chosen"] = not np.array_equal(now, before)
    print(
        f"{name} {kind} {level:g}: before {row['before']:.2f} now {row['now']:.2f} "
        f"shuffled {row['shuffled']:.2f}",
        file=sys.stderr,
    )
    return row


def run(quick: bool) -> list[dict]:
    rows = []
    for s, (name, clean) in enumerate(scenes(quick)):
        photo = not name.startswith("phantom")
        for kind in KINDS[:3] if quick else KINDS:
            for level in (SIGMAS if photo else PHOTONS)[: 1 if quick else 2]:
                reference, noisy = degrade(clean, kind, level, photo, seed=1000 + 17 * s)
                rows.append(_row(name, kind, level, photo, reference, noisy))
    return rows


VALIDATION_PHOTOS = ("coffee", "rocket", "immunohistochemistry", "brick", "grass", "text",
                     "hubble_deep_field")  # fmt: skip
VALIDATION_SIGMAS = (5.0, 10.0, 15.0, 25.0)
RATIOS = (4.0, 6.0, 8.0, 12.0)
LEAST = (0.02, 0.025, 0.03, 0.04, 0.05)


def choose() -> str:
    """The residual ratio and least residual of core.decorrelate, on validation photos."""
    import math

    from napari_deconvnet.core import decorrelate as dc

    cases = []
    for s, name in enumerate(VALIDATION_PHOTOS):
        clean = _crop(_photo(name), SIDE)
        settings = [("clean", 0.0)] + [(k, v) for k in KINDS for v in VALIDATION_SIGMAS]
        for kind, level in settings:
            reference, noisy = (clean, clean) if kind == "clean" else degrade(
                clean, kind, level, True, seed=5000 + 31 * s)  # fmt: skip
            noisy = noisy.astype(np.float32)
            plain = dn.restore(noisy, "default", decorrelate=False)
            case = dict(name=name, kind=kind, level=level, plain=psnr(reference, plain))
            case["screened"] = dc.screen_ratio(noisy) >= dc.SCREEN_RATIO
            if case["screened"]:
                pd = always_shuffled(noisy)
                x = noisy.astype(np.float64)
                low, high = np.percentile(x, (0.5, 99.5))
                case["kept"] = math.sqrt(float(np.mean((x - plain) ** 2))) / (high - low)
                case["taken"] = math.sqrt(float(np.mean((x - pd) ** 2))) / (high - low)
                case["pd"] = psnr(reference, pd)
            cases.append(case)
            print(f"{name} {kind} {level:g}: {case}", file=sys.stderr)
    results = []
    for ratio in RATIOS:
        for least in LEAST:
            picks = [
                c["screened"] and c["taken"] >= ratio * c["kept"] and c["taken"] >= least
                for c in cases
            ]
            chosen_psnr = [c["pd"] if p else c["plain"] for c, p in zip(cases, picks, strict=True)]
            score = np.mean(chosen_psnr)
            results.append((float(score), -sum(picks), ratio, least, sum(picks)))
    best = max(r[0] for r in results)
    within = [r for r in results if r[0] >= best - 0.005]
    chosen = max(within, key=lambda r: (r[1], r[2], r[3]))  # fewest picks, then strictest
    lines = ["| residual ratio | least residual | mean PSNR | images pixel-shuffled |",
             "|---:|---:|---:|---:|"]  # fmt: skip
    for score, _, ratio, least, n in results:
        mark = " ← chosen" if (ratio, least) == chosen[2:4] else ""
        lines.append(f"| {ratio:g} | {least:g} | {score:.3f}{mark} | {n} of {len(cases)} |")
    plain_mean = np.mean([c["plain"] for c in cases])
    lines.append(f"\nPlain restore of every case: {plain_mean:.3f} dB. Chosen: residual ratio "
                 f"{chosen[2]:g}, least residual {chosen[3]:g}.")  # fmt: skip
    changed = [c for c in cases if c["kind"] in ("clean", "white") and c["screened"]
               and c["taken"] >= chosen[2] * c["kept"] and c["taken"] >= chosen[3]]  # fmt: skip
    lines.append(f"Clean or white-noise cases restored pixel-shuffled with it: {len(changed)}.")
    return "\n".join(lines)


#: ``--choose-volumes``: validation volumes (no table uses them), photons, and the grid
VALIDATION_VOLUME_SEEDS = (9301, 9302, 9303)
VALIDATION_VOLUME_PHOTONS = (5.0, 20.0, 100.0, 1000.0)
VOLUME_SCREENS = (1.3, 1.5, 1.8)
VOLUME_RATIOS = (4.0, 6.0, 12.0)
VOLUME_LEAST = (0.0, 0.005, 0.01, 0.02)
#: Nearly clean textured volumes (the case that keeps decorrelation opt-in): planes
#: cut from these validation photos, with white noise of half a grey level
TEXTURE_PHOTOS = ("brick", "grass", "gravel")


def _textured_volume(name: str, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """A clean, finely textured volume, scaled to [0, 1]: planes cut from one texture
    photo, each one pixel further along Y than the one before, so that the texture runs
    on through Z (an oblique structure)."""
    from skimage import data

    image = getattr(data, name)().astype(np.float64)
    image = image.mean(-1) if image.ndim == 3 else image
    z, h, w = shape
    top, left = np.random.default_rng(seed).integers(0, 64, 2)
    volume = np.stack([image[top + k : top + k + h, left : left + w] for k in range(z)])
    return (volume - volume.min()) / np.ptp(volume)


def choose_volumes() -> str:
    """The screen, residual ratio and least residual for 3D models, on validation volumes."""
    import math

    from napari_deconvnet.io.samples import phantom_volume_data

    cases = []
    shape = (32, 96, 96)

    def case_of(name: str, kind: str, level: float, reference, noisy) -> dict:
        noisy = noisy.astype(np.float32)
        x = noisy.astype(np.float64)
        plain = dn.restore(noisy, "denoise-3d")
        pd = always_shuffled(noisy, "denoise-3d")
        low, high = np.percentile(x, (0.5, 99.5))
        from napari_deconvnet.core.decorrelate import screen_ratio

        case = dict(name=name, kind=kind, level=level)
        case["screen"] = float(np.mean([screen_ratio(plane) for plane in x]))
        case["kept"] = math.sqrt(float(np.mean((x - plain) ** 2))) / (high - low)
        case["taken"] = math.sqrt(float(np.mean((x - pd) ** 2))) / (high - low)
        case["plain"], case["pd"] = psnr(reference, plain), psnr(reference, pd)
        print(f"{name} {kind} {level:g}: {case}", file=sys.stderr)
        return case

    for s, seed in enumerate(VALIDATION_VOLUME_SEEDS):
        clean = phantom_volume_data(shape, seed)[1].astype(np.float64)
        clean /= clean.max()
        for kind in VOLUME_KINDS:
            for level in VALIDATION_VOLUME_PHOTONS:
                reference, noisy = degrade_volume(clean, kind, level, seed=6000 + 31 * s)
                cases.append(case_of(f"volume {seed}", kind, level, reference, noisy))
    for s, name in enumerate(TEXTURE_PHOTOS):
        clean = _textured_volume(name, shape, seed=7000 + s)
        noisy = clean + np.random.default_rng(7100 + s).normal(0, 0.5 / 255, shape)
        cases.append(case_of(name, "nearly clean texture", 0.5, clean, noisy))
    results = []
    for screen in VOLUME_SCREENS:
        for ratio in VOLUME_RATIOS:
            for least in VOLUME_LEAST:
                picks = [
                    c["screen"] >= screen
                    and c["taken"] >= ratio * c["kept"]
                    and c["taken"] >= least
                    for c in cases
                ]
                chosen = [c["pd"] if p else c["plain"] for c, p in zip(cases, picks, strict=True)]
                results.append(
                    (float(np.mean(chosen)), -sum(picks), screen, ratio, least, sum(picks))
                )
    best = max(r[0] for r in results)
    within = [r for r in results if r[0] >= best - 0.005]
    chosen = max(within, key=lambda r: (r[1], r[2], r[3], r[4]))  # fewest picks, strictest
    lines = ["| screen | residual ratio | least residual | mean PSNR | volumes pixel-shuffled |",
             "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for score, _, screen, ratio, least, n in results:
        mark = " ← chosen" if (screen, ratio, least) == chosen[2:5] else ""
        lines.append(
            f"| {screen:g} | {ratio:g} | {least:g} | {score:.3f}{mark} | {n} of {len(cases)} |"
        )
    plain_mean = np.mean([c["plain"] for c in cases])
    lines.append(
        f"\nPlain restore of every case: {plain_mean:.3f} dB. Chosen: screen {chosen[2]:g}, "
        f"residual ratio {chosen[3]:g}, least residual {chosen[4]:g}."
    )
    for c in cases:
        if c["kind"] in ("white", "nearly clean texture"):
            taken = (c["screen"] >= chosen[2] and c["taken"] >= chosen[3] * c["kept"]
                     and c["taken"] >= chosen[4])  # fmt: skip
            lines.append(
                f"- {c['name']}, {c['kind']} {c['level']:g}: screen {c['screen']:.2f}, "
                f"{'pixel-shuffled' if taken else 'plain'} "
                f"({c['plain']:.2f} plain, {c['pd']:.2f} pixel-shuffled)"
            )
    return "\n".join(lines)


def _level(row: dict) -> str:
    return f"σ {row['level']:g}" if row["photo"] else f"{row['level']:g} photons"


def table(rows: list[dict]) -> str:
    lines = [
        "| degradation | noise | scenes | input | default | **decorrelate=True** | difference | "
        "pixel-shuffled always | chosen |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["kind"], row["photo"], row["level"]), []).append(row)
    for (kind, _, _), group in groups.items():
        mean = {k: float(np.mean([r[k] for r in group])) for k in ("input", "before", "now")}
        mean["shuffled"] = float(np.mean([r["shuffled"] for r in group]))
        worst = min(r["now"] - r["before"] for r in group)
        chosen = sum(r["chosen"] for r in group)
        lines.append(
            f"| {kind} | {_level(group[0])} | {len(group)} | {mean['input']:.2f} | "
            f"{mean['before']:.2f} | **{mean['now']:.2f}** | {mean['now'] - mean['before']:+.2f} "
            f"(worst {worst:+.2f}) | {mean['shuffled']:.2f} | {chosen} of {len(group)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two photos, one phantom")
    parser.add_argument("--choose", action="store_true", help="the thresholds' choice")
    parser.add_argument("--colour", action="store_true", help="RGB photos, and demosaicing")
    parser.add_argument("--volumes", action="store_true", help="z-stacks through denoise-3d")
    parser.add_argument(
        "--choose-volumes", action="store_true", help="the 3D thresholds' choice, on validation"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    start = time.perf_counter()
    script = "correlated_noise.py"
    if args.choose_volumes:
        caption = (
            f"Machine: {machine()}; validation volumes "
            f"{', '.join(map(str, VALIDATION_VOLUME_SEEDS))} (32x96x96) and nearly clean "
            f"textured volumes cut from {', '.join(TEXTURE_PHOTOS)}."
        )
        title = "Correlated noise in z-stacks: the thresholds"
        report(title, script, argv, caption, choose_volumes(), args.markdown)
        return 0
    if args.choose:
        caption = f"Machine: {machine()}; validation photos {', '.join(VALIDATION_PHOTOS)}."
        title = "Correlated noise: the decision's thresholds"
        report(title, script, argv, caption, choose(), args.markdown)
        return 0
    if args.volumes:
        rows = run_volumes(args.quick)
        title = "Correlated noise in z-stacks through denoise-3d"
        scenes_are = f"the test volumes {', '.join(map(str, VOLUME_SEEDS))}, 32x128x128"
    elif args.colour:
        rows = run_colour(args.quick)
        title = "Correlated noise in colour through denoise-2d"
        scenes_are = f"the RGB test photos {', '.join(COLOUR_PHOTOS)}, 256² crops"
    else:
        rows = run(args.quick)
        title = "Correlated noise through denoise-2d"
        scenes_are = "photos: the six test photos; phantoms: test seeds 71 and 72; 256² crops"
    caption = (
        f"Machine: {machine()}; {time.perf_counter() - start:.0f} s. Mean PSNR (dB) over "
        f"the scenes of each row ({scenes_are})."
    )
    report(title, script, argv, caption, table(rows), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
