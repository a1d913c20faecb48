"""Classical restoration methods: deconvolution and denoising without training.

``extra["iterate"]`` names a generator form of the function that takes a
stack (leading axes, then the spatial ones), yields ``(done, total)`` and
returns the result: :func:`napari_deconvnet.run_method_iter` uses it so that
progress and cancel come per iteration or tile rather than per plane.
"""

from ..specs import Param, Spec, register
from .noise import impulse_levels

_C = "napari_deconvnet.core.classical"
_D = "napari_deconvnet.core.denoisers"

_NOISE_LEVEL = (
    "Noise standard deviation in intensity units; automatic (estimated from the image) when empty"
)

register(
    Spec(
        "method",
        "richardson-lucy",
        "Deconvolution for a known PSF and Poisson (photon) noise; tune the iterations, "
        "add TV regularisation if noisy.",
        params=(
            Param(
                "iterations",
                "int",
                30,
                low=1,
                high=10000,
                label="Iterations",
                help="More sharpens more and amplifies noise; 10-50 is typical",
            ),
            Param(
                "regularization",
                "float",
                None,
                low=0.0,
                high=0.16,
                optional=True,
                label="TV regularisation",
                help="Total-variation weight (e.g. 0.002) that damps noise, below 1/(2 d) for "
                "a d-dimensional PSF; empty for none",
            ),
        ),
        function=f"{_C}:richardson_lucy",
        extra={"iterate": f"{_C}:richardson_lucy_iter"},
        kind="classical",
        needs_psf=True,
        tags=("deconv",),
    )
)
register(
    Spec(
        "method",
        "wiener",
        "Fast one-step deconvolution for a known PSF and mild Gaussian noise.",
        params=(
            Param(
                "balance",
                "float",
                None,
                low=0.0,
                optional=True,
                label="Balance",
                help="Noise-to-signal regularisation; automatic (estimated) when empty",
            ),
        ),
        function=f"{_C}:wiener",
        kind="classical",
        needs_psf=True,
        tags=("deconv",),
    )
)
register(
    Spec(
        "method",
        "nlm",
        "Non-local means: denoising of textured images with repeated patterns.",
        params=(
            Param(
                "sigma",
                "float",
                None,
                low=0.0,
                optional=True,
                label="Noise level",
                help=_NOISE_LEVEL,
            ),
        ),
        function=f"{_D}:denoise_nlm",
        extra={"iterate": f"{_D}:denoise_nlm_iter"},
        kind="classical",
        ndim=(2,),
        tags=("denoise",),
    )
)
register(
    Spec(
        "method",
        "tv",
        "Total variation: denoising of piecewise-flat images (keeps edges).",
        params=(
            Param(
                "weight",
                "float",
                None,
                low=0.0,
                optional=True,
                label="Weight",
                help="Smoothing strength; automatic (from the estimated noise) when empty",
            ),
        ),
        function=f"{_D}:denoise_tv",
        kind="classical",
        ndim=(2,),
        tags=("denoise",),
    )
)
register(
    Spec(
        "method",
        "wavelet",
        "Wavelet shrinkage: fast denoising of Gaussian noise.",
        params=(
            Param(
                "sigma",
                "float",
                None,
                low=0.0,
                optional=True,
                label="Noise level",
                help=_NOISE_LEVEL,
            ),
        ),
        function=f"{_D}:denoise_wavelet",
        kind="classical",
        ndim=(2,),
        requires=("pywt",),
        tags=("denoise",),
    )
)
register(
    Spec(
        "method",
        "median",
        "Median filter: removes salt-and-pepper (impulse) noise; a larger size removes "
        "denser impulses.",
        params=(
            Param(
                "size",
                "int",
                3,
                low=1,
                high=99,
                label="Window size",
                help="Odd width of the window in pixels",
            ),
        ),
        function=f"{_D}:denoise_median",
        kind="classical",
        tags=("impulse",),
    )
)
register(
    Spec(
        "method",
        "switching-median",
        "Switching median: replaces only the salt-and-pepper pixels (the image's min and "
        "max) by a median of their clean neighbours.",
        params=(
            Param(
                "largest",
                "int",
                7,
                low=3,
                high=99,
                label="Largest window",
                help="Largest odd window tried around an impulse",
            ),
            *impulse_levels("each channel's"),
        ),
        function=f"{_D}:denoise_switching_median",
        kind="classical",
        tags=("impulse",),
        # the impulse levels of the whole image, also where it runs plane by plane (a
        # plane's own extremes made a clean plane's darkest pixel pepper)
        extra={"image_defaults": {"low": "min", "high": "max"}},
    )
)
register(
    Spec(
        "method",
        "bm3d",
        "BM3D: strong denoising of 2D Gaussian noise (needs the 'bm3d' package).",
        params=(
            Param(
                "sigma",
                "float",
                None,
                low=0.0,
                optional=True,
                label="Noise level",
                help=_NOISE_LEVEL,
            ),
        ),
        function=f"{_D}:denoise_bm3d",
        kind="classical",
        ndim=(2,),
        requires=("bm3d",),
        # the bm3d library's native thread pool aborts the process when two threads
        # call it at once (dask computes a lazy image's blocks in threads)
        tags=("denoise", "serial"),
    )
)
