"""Noise models of :func:`napari_deconvnet.synthesize`, in the image's intensity units."""

from ..specs import Param, Spec, register


def impulse_levels(whose: str) -> tuple[Param, Param]:
    """The optional ``low`` and ``high`` impulse values, `whose` extremes when empty (the
    salt-and-pepper noise's and the switching median's)."""
    return (
        Param("low", "float", None, optional=True, label="Pepper value",
              help=f"Value of pepper pixels; {whose} minimum when empty"),
        Param("high", "float", None, optional=True, label="Salt value",
              help=f"Value of salt pixels; {whose} maximum when empty"),
    )  # fmt: skip


_N = "napari_deconvnet.core.noise"

# tags: "counts" models draw photon counts (negative intensities count as 0).

register(
    Spec(
        "noise",
        "gaussian",
        "Additive white Gaussian noise of a fixed standard deviation.",
        params=(
            Param(
                "sigma",
                "float",
                0.1,
                low=0.0,
                label="Sigma",
                help="Standard deviation, in the image's intensity units",
            ),
        ),
        function=f"{_N}:gaussian_noise",
    )
)
register(
    Spec(
        "noise",
        "poisson",
        "Photon (shot) noise: intensity 1.0 expects `peak` photons.",
        params=(
            Param(
                "peak",
                "float",
                100.0,
                low=0.0,
                exclusive_low=True,
                label="Peak (photons)",
                help="Photons per unit of intensity; fewer is noisier",
                aliases=("gain",),
            ),
        ),
        function=f"{_N}:poisson_noise",
        tags=("counts",),
    )
)
register(
    Spec(
        "noise",
        "poisson-gaussian",
        "Camera noise: photon noise, read noise, offset and quantisation, in ADU.",
        params=(
            Param(
                "gain",
                "float",
                100.0,
                low=0.0,
                exclusive_low=True,
                label="Gain (e-/ADU)",
                help="Electrons per unit of intensity (ADU)",
                aliases=("peak",),
            ),
            Param(
                "offset",
                "float",
                0.0,
                label="Offset (ADU)",
                help="Camera offset (bias) added to every pixel",
            ),
            Param(
                "read_noise",
                "float",
                1.0,
                low=0.0,
                label="Read noise (e-)",
                help="Read noise, electrons rms",
            ),
            Param(
                "bit_depth",
                "int",
                None,
                low=1,
                high=32,
                optional=True,
                label="Bit depth",
                help="Round and clip to [0, 2**bits - 1] ADU; empty for no quantisation",
            ),
            Param(
                "clean_includes_offset",
                "bool",
                False,
                label="Clean image includes the offset",
                help="The clean image is in the camera's ADU with its offset (an average of "
                "many frames, a sample's clean layer): the offset is taken off before the "
                "photon noise and put back once; off: the clean image is the signal above "
                "the offset",
            ),
        ),
        function=f"{_N}:poisson_gaussian_noise",
        tags=("counts",),
    )
)
register(
    Spec(
        "noise",
        "salt-and-pepper",
        "Impulse noise: a fraction of pixels set to the image's minimum or maximum.",
        params=(
            Param(
                "amount",
                "float",
                0.05,
                low=0.0,
                high=1.0,
                label="Amount",
                help="Fraction of pixels replaced",
            ),
            Param(
                "salt_vs_pepper",
                "float",
                0.5,
                low=0.0,
                high=1.0,
                label="Salt vs pepper",
                help="Fraction of replaced pixels set high",
            ),
            *impulse_levels("the image's"),
        ),
        function=f"{_N}:salt_and_pepper_noise",
        # when not given, low and high are the minimum and maximum of the whole
        # image, also where it is synthesized plane by plane
        extra={"image_defaults": {"low": "min", "high": "max"}},
    )
)
register(
    Spec(
        "noise",
        "speckle",
        "Multiplicative noise: each pixel times (1 + sigma n), n standard normal.",
        params=(
            Param(
                "sigma",
                "float",
                0.1,
                low=0.0,
                label="Sigma",
                help="Standard deviation of the multiplicative noise",
            ),
        ),
        function=f"{_N}:speckle_noise",
    )
)
register(
    Spec(
        "noise",
        "none",
        "No noise: only the blur by the PSF, if one is given.",
        function=f"{_N}:no_noise",
    )
)
