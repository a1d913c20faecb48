"""PSF kinds of :func:`napari_deconvnet.make_psf`."""

from ..specs import Param, Spec, register

_P = "napari_deconvnet.core.psf"

_OPTICS = (
    Param(
        "wavelength", "float", 520.0, low=1.0, label="Wavelength (nm)", help="Emission wavelength"
    ),
    Param(
        "na",
        "float",
        0.8,
        low=0.01,
        high=1.7,
        label="NA",
        help="Numerical aperture of the objective",
    ),
    Param(
        "pixel_size",
        "float",
        100.0,
        low=0.001,
        label="Pixel size (nm)",
        help="Lateral pixel size in the sample",
    ),
    Param(
        "refractive_index",
        "float",
        1.0,
        low=1.0,
        high=2.0,
        label="Immersion index",
        help="1.0 air, 1.33 water, 1.518 oil; at least the NA",
    ),
    Param(
        "oversample",
        "int",
        3,
        low=1,
        high=16,
        label="Oversampling",
        help="Sub-pixel samples per axis of the lateral pixel integration",
    ),
)

register(
    Spec(
        "psf",
        "gaussian",
        "A Gaussian integrated over each pixel: a generic blur of known width.",
        params=(
            Param(
                "sigma",
                "floats",
                1.0,
                low=0.0,
                label="PSF sigma (px)",
                help="Standard deviation in pixels; one number, or one per axis (z, y, x)",
            ),
        ),
        function=f"{_P}:gaussian_psf",
        ndim=(2, 3),
    )
)
register(
    Spec(
        "psf",
        "airy",
        "The in-focus Airy disk of a circular pupil (2D widefield optics).",
        params=_OPTICS,
        function=f"{_P}:airy_psf",
        ndim=(2,),
    )
)
register(
    Spec(
        "psf",
        "widefield",
        "A widefield microscope's 3D PSF (scalar, paraxial), with its axial extent.",
        params=(
            *_OPTICS[:3],
            Param(
                "z_step",
                "float",
                250.0,
                low=0.001,
                label="Z step (nm)",
                help="Axial distance between planes",
            ),
            *_OPTICS[3:],
        ),
        function=f"{_P}:widefield_psf",
        ndim=(3,),
    )
)
