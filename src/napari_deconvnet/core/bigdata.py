"""Data bigger than memory: lazy restores, streaming to OME-Zarr, resume, clusters.

Every path here restores the image in **blocks**. A block is a box of the
output; it starts on a multiple of its size, which is a multiple of the
network's ``2**depth`` grid, so the tiles inside it start on the same grid as
an in-memory restore's, whatever the input's chunks. Its input is read with
the network's halo of context around it (mapped by index: the reflection of
the image at the image's borders, the neighbouring pixels elsewhere), plus
the context the model kind's extra channel needs
(:meth:`~napari_deconvnet.core.kinds.ModelKind.input_margin`). Every
statistic a block depends on (normalisation, the model kind's statistics)
is computed once for the whole image before any block runs, so blocks agree
with each other and with an in-memory restore.

- :func:`lazy_restore` (``restore`` on a dask array) builds a dask graph of
  blocks (:mod:`~napari_deconvnet.core.lazy`).
- :func:`restore_to_zarr` streams blocks from a zarr, OME-Zarr, TIFF or
  ``.npy`` file (or an array) straight into a pre-created OME-Zarr, keeps a
  done-marker per block so that a rerun resumes, builds the pyramid from
  what was written, and writes the metadata last, atomically
  (:mod:`~napari_deconvnet.core.streaming`, reading through
  :mod:`~napari_deconvnet.core.sources` and writing through
  :mod:`~napari_deconvnet.core.ome_zarr`).
- Both run on a ``dask.distributed`` cluster. The model's weights travel to
  each worker once (broadcast, then cached per process, keyed by a hash of
  the weights), and each worker picks its own device (``device="auto"``: the
  worker's GPU, one worker per GPU, else its CPU); see
  :mod:`~napari_deconvnet.core.blocks`.

This module gathers their public names, importable from here as before.
"""

from __future__ import annotations

from .lazy import lazy_restore
from .streaming import restore_to_zarr

__all__ = ["lazy_restore", "restore_to_zarr"]
