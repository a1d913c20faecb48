"""Fine-tune deconv-2d on synthetic pairs with an even-sized PSF, then restore held-out
images with it: PSNR and the residual shift of the result (session 69 registration).

An 8 x 8 Gaussian PSF (sigma 1.6, centred between pixels), Gaussian noise sigma 0.01;
``dn.train(mode="synthetic", model="deconv-2d")`` on scikit-image's camera photo for the
given seconds (one torch thread), then the shipped and the fine-tuned model restore three
other photos (astronaut, coffee, brick; 192 x 192), never seen in training.

Usage::

    python benchmarks/even_psf_finetune.py 240
"""

import sys, time
import numpy as np, torch

torch.set_num_threads(1)
import napari_deconvnet as dn
from skimage import data, transform
from skimage.registration import phase_cross_correlation

yy, xx = np.mgrid[:8, :8] - 3.5
psf = np.exp(-(yy**2 + xx**2) / (2 * 1.6**2))
psf /= psf.sum()
train = transform.resize(data.camera().astype(np.float32) / 255, (256, 256), anti_aliasing=True)
tests = [
    transform.resize(im, (192, 192), anti_aliasing=True).astype(np.float32)
    for im in (
        data.astronaut()[..., 1] / 255.0,
        data.coffee()[..., 0] / 255.0,
        data.brick() / 255.0,
    )
]
noise = {"model": "gaussian", "sigma": 0.01}
t0 = time.time()
res = dn.train(
    train,
    mode="synthetic",
    psf=psf,
    noise=noise,
    model="deconv-2d",
    max_seconds=float(sys.argv[1]),
    patch_size=64,
    batch_size=8,
    seed=0,
    device="cpu",
    validation=0.1,
)
print("trained", round(time.time() - t0), "s", res.steps if hasattr(res, "steps") else "")
for name, model in (("shipped", "deconv-2d"), ("fine-tuned", res.model)):
    gains, shifts = [], []
    for i, clean in enumerate(tests):
        noisy = dn.synthesize(clean, "gaussian", psf=psf, sigma=0.01, seed=10 + i)
        out = dn.restore(noisy, model, psf=psf, device="cpu")
        gains.append(dn.psnr(out, clean, data_range=1.0))
        shifts.append(phase_cross_correlation(clean, out, upsample_factor=20)[0].tolist())
    print(
        name,
        "PSNR",
        [round(g, 2) for g in gains],
        "mean",
        round(float(np.mean(gains)), 2),
        "shift",
        shifts,
    )
