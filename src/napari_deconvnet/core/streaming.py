"""Streaming restores: block by block from a file straight into an OME-Zarr, resumably.

:func:`restore_to_zarr` reads each block's region from its source
(:mod:`~napari_deconvnet.core.sources`), restores it
(:mod:`~napari_deconvnet.core.blocks`), writes it into the chunks it covers
of a pre-created OME-Zarr (:mod:`~napari_deconvnet.core.ome_zarr`) and marks
it done, in this process or as tasks on a ``dask.distributed`` cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import is_dask
from .atomic import swap_folder
from .axes import check_axes
from .blocks import (
    Job,
    ModelPayload,
    default_client,
    input_region,
    make_job,
    model_payload,
    own_input,
    restore_block,
)
from .borders import check_borders
from .channel_psfs import channel_axis, per_channel, psf_channel
from .colour import (
    alpha_axis,
    from_opponent,
    opponent_axis,
    split_alpha,
    to_opponent,
)
from .decorrelate import warn_not_applied
from .devices import dtype_name
from .ensemble import check_ensemble
from .generators import check_callbacks
from .impulse_gap import across_gap, impulse_gap
from .impulse_switch import find_impulses, switch_impulses, switch_impulses_lazy
from .lazy import constant_value
from .memory import feature_map_bytes, reuse_freed_memory, worth_reusing
from .ome_zarr import (
    JOB_DIR,
    LAYER_KEY,
    layer_document,
    multiscales,
    ngff_axes,
    prepare_staging,
    prepare_target,
    pyramid,
    replaces_a_result,
    staging_folder,
    target_array,
    write_json,
)
from .restoration import (
    Cancelled,
    images_with_objects,
    impulses_by_channel,
    prepare_restore,
    private_model,
)
from .sources import PathSource, as_lazy, content_digest, open_source, read_region

__all__ = ["restore_to_zarr"]

# Output blocks of streamed restores, per spatial axis (2D, 3D), unless chunks= says.
_DEFAULT_BLOCK = {2: (1024, 1024), 3: (64, 256, 256)}


def _with_opacity(normalization: dict[str, Any], axis: int, samples: int) -> dict[str, Any]:
    """Statistics of an RGBA image's colours (or a grey image's, with opacity) with a
    neutral set for its opacity.

    :func:`~napari_deconvnet.compute_normalization` leaves the opacity out
    (restores keep it as it is), but the streamed blocks carry all four
    `samples` along the batch axis `axis` (their position in the transposed
    layout): one value per colour gains one for the opacity along it, one for
    all colours stays as it is.
    """
    out = dict(normalization)
    for key, neutral in (("offset", 0.0), ("scale", 1.0)):
        value = np.asarray(normalization[key], np.float64)
        if value.ndim == 0:
            continue
        at = axis if value.ndim > 1 else 0
        if value.shape[at] != samples - 1:  # one per colour (opacity: the last sample)
            continue  # a shape the checks below refuse, with their message
        pad = np.full(value.shape[:at] + (1,) + value.shape[at + 1 :], neutral)
        out[key] = np.concatenate([value, pad], axis=at).tolist()
    return out


def restore_to_zarr(
    source: Any,
    target: str | os.PathLike,
    model: Any = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    tile: int | Sequence[int] | None = None,
    chunks: int | Sequence[int] | None = None,
    overlap: int | None = None,
    device: Any = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    normalization: dict[str, Any] | None = None,
    light_noise_guard: bool | dict[str, Any] | None = None,
    impulse_switch: bool | None = None,
    ensemble: int = 1,
    decorrelate: bool | None = None,
    borders: str = "auto",
    resume: bool = True,
    overwrite: bool = False,
    client: Any = None,
    progress: Callable[[int, int], Any] | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
) -> str:
    """Restore an image block by block straight into an OME-Zarr, resumably.

    Parameters
    ----------
    source : path, ndarray, dask array or zarr array
        A zarr array or OME-Zarr image folder (level 0 is read; its axes and
        scale are kept), a TIFF (memory-mapped when uncompressed, else read
        chunk by chunk), a ``.npy`` file (memory-mapped), or an array. Only
        the region each block needs is read.
    target : path
        The OME-Zarr (NGFF 0.4, zarr format 2, float32) to write, e.g.
        ``"out.ome.zarr"``. Axes are stored in NGFF order (time, channel,
        space; RGB samples become the channel axis).
    model, psf, axes, tile, overlap, device, batch_size, precision
        As for :func:`~napari_deconvnet.restore`; every model works,
        conditioned ones included. `psf` may be a list of PSFs, one per
        channel (:mod:`~napari_deconvnet.core.channel_psfs`). An ``"airy"``
        or ``"widefield"`` PSF kind given without ``pixel_size`` or
        ``z_step`` takes them from a source file's calibration (OME-Zarr
        scale, OME-XML or ImageJ sizes in units of length), as the command
        line and the widgets do; the provenance records what was taken
        (``psf_calibration_nm``).
    chunks : int or sequence of int, optional
        Output block (and chunk) size per spatial axis, rounded up to the
        network's grid; default 1024 x 1024 (2D models), 64 x 256 x 256 (3D).
    light_noise_guard, impulse_switch : bool, optional
        As for :func:`~napari_deconvnet.restore`, the guard also given the
        image's noise as a dict (the guard's weight and the search for
        impulses from a central crop of the source; impulses are replaced
        block by block with the context the filter needs).
    decorrelate : bool, optional
        Accepted for the same parameters as :func:`~napari_deconvnet.restore`
        (checked), but a streamed restore never restores pixel-shuffled
        (:mod:`~napari_deconvnet.core.decorrelate` needs the image in memory):
        ``True`` restores without it, with a UserWarning.
    borders : str, optional
        As for :func:`~napari_deconvnet.restore` (checked), but blocks cannot
        see the image's borders: every side is extended by its mirror image
        (``"dark"`` or ``"periodic"`` with a UserWarning).
    normalization : dict, optional
        Fixed ``{"offset", "scale"}``; default the model's contract, with
        statistics from a deterministic sample of the source's chunks (exact
        for numpy arrays in memory), see :mod:`~napari_deconvnet.core.normalization`.
    ensemble : int
        Only 1: a self-ensemble (:func:`~napari_deconvnet.restore`'s
        ``ensemble``) needs the whole image in memory; larger values are
        refused with a ValueError.
    resume : bool
        When `target` holds an unfinished run of the same job (same source
        shape, model, statistics and settings), finish it: blocks marked done
        are skipped. A finished identical job returns at once.
    overwrite : bool
        Replace an existing `target` that holds something else.
    client : dask.distributed.Client, False or None
        Run the blocks on this cluster (workers read the source and write the
        target themselves, so both must be on a shared file system when
        they are paths). ``None`` uses the running default client if there is
        one, ``False`` never.
    progress : callable, optional
        ``progress(blocks_done, n_blocks)`` after every block (resumed blocks
        count as done).
    stop : threading.Event, optional
        Stops before the next block and raises
        :class:`~napari_deconvnet.Cancelled`; what was written stays, and a
        rerun resumes.
    name : str, optional
        The image's name in the metadata; default the target's file name.

    Returns
    -------
    str
        The path of the written OME-Zarr.

    Notes
    -----
    The target is created first (level 0, then a ``.napari_deconvnet_job``
    folder holding the job's fingerprint and one empty marker per finished
    block). Each block is read with its context, restored and written into
    the chunks it covers (blocks never share a chunk), then marked done. When
    all are done, the pyramid levels are averaged from level 0 as written,
    the metadata (``multiscales`` and the layer's provenance) is written to
    ``.zattrs`` atomically (temp file, fsync, rename), and the job folder is
    removed. Until then, readers do not see an OME-Zarr image. Blocks are
    computed as by :func:`~napari_deconvnet.restore` on a dask array, so the
    result equals a lazy restore of the same chunked data.
    """
    from .._version import __version__

    stop = check_callbacks(progress, stop)
    _check_target_path(target)
    for flag, value in (("resume", resume), ("overwrite", overwrite)):
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(
            f"name must be a non-empty string (the image's name in the OME-Zarr metadata) "
            f"or None (the target's file name), got {name!r}"
        )
    if client is not None and client is not False and not hasattr(client, "scatter"):
        raise TypeError(
            f"client must be a dask.distributed Client, False (no cluster) or None (the "
            f"running default client, if any), got {type(client).__name__}"
        )
    warn_not_applied(decorrelate)  # a streamed restore never decorrelates (see above)
    if check_borders(borders) not in ("auto", "mirror"):
        warnings.warn(
            f"borders={borders!r} is not applied to a streamed restore: blocks extend every "
            "side by its mirror image; restore the image in memory (dn.restore) for that",
            UserWarning,
            stacklevel=2,
        )
    if check_ensemble(ensemble) > 1:
        raise ValueError(
            f"ensemble={ensemble}: a streamed restore runs one view per block; the "
            "self-ensemble needs the image in memory (dn.restore with a numpy array), "
            "so restore_to_zarr takes ensemble=1 only"
        )
    started = time.perf_counter()
    array, path_source, info = open_source(source)
    psf, calibrated = _file_calibration(psf, info)  # an optical kind: the file's pixel size
    if axes is None and info.get("axes"):
        with contextlib.suppress(ValueError, TypeError):
            axes = info["axes"]
            net0 = private_model(model)
            axes = check_axes(axes, array.shape, net0)
    # one PSF per channel (core.channel_psfs): a job per channel, each writing its own
    several = per_channel(psf)
    psfs = list(psf) if several else [psf]
    # channels whose impulses are their own: a job per channel too (restore's rule)
    alone = None if several else impulses_by_channel(array.shape, model, psf, axes, impulse_switch)
    if alone:
        several, psfs = True, alone
    if several and axes is None:
        channel_axis(psfs, axes, array.shape)  # (says that axes with a C are needed)
    # notes on a PSF name its channel where the channels have PSFs of their own (not
    # one PSF for channels restored one by one: said once, in its own words)
    distinct = several and len({id(p) for p in psfs}) > 1
    with psf_channel(0 if distinct else None):
        net, axes, layout, dev, dtype = prepare_restore(
            array, model, psfs[0], axes, device, precision
        )
    if several:  # (the axes as prepare_restore checked them)
        channel_axis(psfs, axes, array.shape)
    if client is None:
        client = default_client()
    elif client is False:
        client = None
    lazy = as_lazy(array)
    xt = lazy.transpose(layout.perm)
    seen = xt  # the image as the network will see it: its statistics
    # an RGBA image's opacity (a grey one's too) is a mask, no image: its blocks keep it,
    # and impulses are looked for in the colours alone, as restore does (core.colour)
    opacity = alpha_axis(array.shape, axes, normalization)
    if opacity is not None:
        opacity = list(layout.perm).index(opacity)
        opacity = opacity if opacity < layout.n_batch_axes else None
    colours = xt if opacity is None else split_alpha(xt, opacity)[0]
    impulses = None
    if not alone:  # see core.impulse_switch
        impulses = find_impulses(net, layout, colours, impulse_switch)
    if impulses is not None:  # blocks replace them in what they read
        seen = switch_impulses_lazy(xt, impulses, net.config.ndim)
    gap = None if alone else impulse_gap(colours, net)
    if gap is not None:  # blocks move them in what they read (core.impulse_gap)
        seen = across_gap(seen, gap)
    at = list(layout.perm).index(axes.index("C")) if alone else None  # C, a batch axis
    each = [None] * len(psfs)  # with channels alone: each one's impulses, its blocks' own
    gaps = [None] * len(psfs)  # (and each one's impulse levels moved, core.impulse_gap)
    if alone:
        import dask.array as da

        parts = []
        for c in range(len(psfs)):
            one = xt[(slice(None),) * at + (slice(c, c + 1),)]
            gaps[c] = impulse_gap(one, net)
            if gaps[c] is not None:
                one = across_gap(one, gaps[c])
            each[c] = find_impulses(net, layout, one, impulse_switch)
            parts.append(
                one if each[c] is None else switch_impulses_lazy(one, each[c], net.config.ndim)
            )
        seen = da.concatenate(parts, axis=at)
    # RGB through a one-channel denoiser, as restore and lazy restores do (core.colour):
    # statistics of the luminance and chroma, and one task per spatial block restores
    # all its samples, so that they can be mixed back before they are written
    constant = constant_value(lazy)  # nothing to restore: every block writes it, unmixed
    colour = opponent_axis(array, net, axes, normalization) if constant is None else None
    if colour is None and constant is None:  # with or without fixed statistics: one range
        _warn_bright_objects(seen, net, layout)
    stats_of = seen
    if colour is not None:
        colour = list(layout.perm).index(colour)  # the S axis, a batch axis here
        stats_of = to_opponent(seen, colour)
    ndim = net.config.ndim
    if chunks is None:
        block = list(_DEFAULT_BLOCK[ndim])
    else:
        block = [chunks] * ndim if np.ndim(chunks) == 0 else list(chunks)
        if len(block) != ndim or any(
            isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 1 for b in block
        ):
            raise ValueError(
                f"chunks must be a positive integer or {ndim} positive integers (one per "
                f"spatial axis), got {chunks!r}"
            )
    if opacity is not None and normalization is not None:  # of the colours alone
        samples = layout.transposed_shape[opacity]
        normalization = _with_opacity(normalization, opacity, samples)
    options = dict(
        tile=tile,
        overlap=overlap,
        dev=dev,
        dtype=dtype,
        batch_size=batch_size,
        precision=precision,
        device=device,
        normalization=normalization,
        block=block,
        light_noise_guard=light_noise_guard,
        colour=colour,
        impulses=impulses,
        impulse_gap=gap,
        opacity=opacity,
    )
    layouts = [layout]
    for c, other in enumerate(psfs[1:], 1):
        with warnings.catch_warnings(record=True) as caught, psf_channel(c if distinct else None):
            warnings.simplefilter("always")
            layouts.append(prepare_restore(array, net, other, axes, device, precision)[2])
        for said in caught:
            # what was said of the image, its model and its precision was said for the
            # first channel; what is said of this channel's own PSF is said too (session
            # 73: a 520 nm PSF cropped to lose 9% of its light said nothing, streamed,
            # where restore warned of each channel's)
            if distinct and f"channel {c}" in str(said.message):
                warnings.warn(said.message, said.category, stacklevel=2)
    # with channels alone, each channel's job has its impulses and its kind's values
    own = [
        {"impulses": each[c], "impulse_gap": gaps[c], "channel": (at, c)} if alone else {}
        for c in range(len(psfs))
    ]
    jobs = [make_job(stats_of, net, one, **(options | own[c])) for c, one in enumerate(layouts)]
    if constant is not None:  # as restore_iter returns a constant image
        jobs = [dataclasses.replace(job, constant=float(constant)) for job in jobs]
    job = jobs[0]
    payload = model_payload(net)
    zaxes, zperm = ngff_axes(axes)
    spatial_letters = "ZYX"[3 - ndim :]
    chunk_o = []
    for a, s in zip(axes, array.shape, strict=True):
        if a in spatial_letters:
            chunk_o.append(job.block[spatial_letters.index(a)])
        elif layout.has_channel and a in "CS":
            chunk_o.append(s)
        else:
            chunk_o.append(1)
    out_shape = tuple(int(array.shape[i]) for i in zperm)
    out_chunks = tuple(chunk_o[i] for i in zperm)
    described = str(Path(source).resolve()) if path_source is not None else "array"
    # the precision the blocks run in, "auto" resolved where it is known (one process): a
    # run started in bfloat16 on a CPU with AMX is not continued in float32 elsewhere
    ran_in = dtype_name(dtype) if client is None or precision != "auto" else None
    extra = {"source": described, "dtype": str(array.dtype), "axes": axes, "version": 1}
    # what the source holds (a sample of it): the next acquisition written to the same
    # file, or another array, is another job (it resumed into the previous one's result)
    content = content_digest(array)
    if ran_in is not None and ran_in != "float32":
        extra["ran_in"] = ran_in  # float32 jobs keep the fingerprint they had
    if colour is not None:
        extra["colour"] = "opponent"  # earlier runs streamed colour by colour
    if len(jobs) > 1:  # the other channels' jobs (their PSFs); one PSF: as before
        extra["channel_jobs"] = [other.fingerprint(payload.key, {}) for other in jobs[1:]]
    legacy = job.fingerprint(payload.key, extra)  # (before the content digest)
    fingerprint = job.fingerprint(payload.key, {**extra, "content": content})
    target = Path(target)
    if path_source is not None:
        _check_not_the_source(target, Path(source))
    else:  # a dask or zarr array or a memory map may read the very store it would write
        places = _dask_store_paths(array) if is_dask(array) else _local_places(source)
        for store in places:
            _check_not_the_source(target, store)
    final = target
    again = "resume=True"  # (how a cancelled run continues)
    if replaces_a_result(final, overwrite):
        # written beside the old result, which stays until the new one is complete
        target = staging_folder(final)
        prepare_staging(target, {fingerprint, legacy}, resume)
        overwrite = False
        again = "overwrite=True (and resume=True)"
    done = prepare_target(
        target, fingerprint, resume, overwrite, out_shape, out_chunks, legacy=legacy
    )
    blocks, owners = _owned_units(jobs, colour, layout, axes)
    total = len(blocks)
    if done is None:
        if progress is not None:
            progress(total, total)
        if target != final:
            swap_folder(target, final)
        return str(final)
    todo = [n for n in range(total) if n not in done]
    count = total - len(todo)
    reader = (path_source if path_source is not None else array, layout.perm)
    args = (str(target), zperm, layout.inverse)

    def report(finished: int) -> None:
        if progress is not None:
            progress(finished, total)

    if client is None:
        # block after block reuses the last one's buffers (core.memory)
        feature_map = feature_map_bytes(net, job.tile, job.halo, job.batch_size, dtype)
        with reuse_freed_memory(dev.type == "cpu" and worth_reusing(feature_map, len(todo))):
            for n in todo:
                if stop is not None and stop.is_set():
                    raise Cancelled(
                        f"restoration cancelled after {count} of {total} blocks; run again "
                        f"with {again} to continue"
                    )
                _write_block(None, reader, jobs[owners[n]], payload, blocks[n], n, *args)
                count += 1
                report(count)
    else:
        count = _run_on_cluster(
            client,
            todo,
            (blocks, owners),
            jobs,
            payload,
            reader,
            xt,
            args,
            fingerprint,
            count,
            report,
            stop,
            again,
        )
    if not todo:  # every block was written before a kill: what is left is the pyramid
        report(count)
    shapes = pyramid(target, zaxes, out_chunks, client)
    offset, scale = job.offset.reshape(-1).tolist(), job.scale.reshape(-1).tolist()
    provenance = {
        "model": net.metadata.get("name", str(model) if isinstance(model, str) else "custom"),
        **({"colour": "opponent (luminance and chroma)"} if colour is not None else {}),
        "model_sha256": payload.key,
        "psf": _psf_record(jobs, psfs),
        **({"psf_calibration_nm": calibrated} if calibrated else {}),
        "tile": list(job.tile),
        "block": list(job.block),
        "halo": job.halo,
        # "auto" on a cluster: each worker's own (float16 on a GPU, float32 on a CPU)
        "precision": ran_in or "auto (each worker's)",
        "normalization": {"offset": offset, "scale": scale},
        **({"light_noise_blend": job.blend_record()} if job.blend is not None else {}),
        **({"impulses_replaced": job.impulses} if job.impulses is not None else {}),
        "source": described,
        "streamed": True,
        "seconds": round(time.perf_counter() - started, 3),
        "version": __version__,
        "job": fingerprint,
    }
    label = name or final.name.split(".")[0]
    # read back in the source's order, as the in-memory writer records it (session 71:
    # a ZCYX stack came back ZCYX in memory but CZYX once big enough to be streamed)
    doc_axes = zaxes.replace("C", "") + "S" if "S" in axes else zaxes
    if "S" not in axes and sorted(axes) == sorted(zaxes):
        doc_axes = axes
    attrs = {
        # the file's scale and units, by letter (axes= may name some axes otherwise)
        "multiscales": multiscales(label, zaxes, shapes, info, info.get("axes") or ""),
        # colour (an S axis, stored as NGFF's C) is read back as an RGB layer, as the
        # in-memory writer records it: the S axis last
        LAYER_KEY: layer_document(label, doc_axes, info, provenance),
    }
    names = info.get("channel_names")
    if names and "C" in zaxes and "S" not in axes and len(names) == shapes[0][zaxes.index("C")]:
        # the source's channel names as NGFF omero labels, as the in-memory writer
        # writes them (session 71 noted them lost on every streamed output)
        attrs["omero"] = {"channels": [{"label": str(n), "active": True} for n in names]}
    write_json(target / ".zattrs", attrs)
    shutil.rmtree(target / JOB_DIR, ignore_errors=True)
    if target != final:
        swap_folder(target, final)
    return str(final)


def _warn_bright_objects(seen: Any, net: Any, layout: Any) -> None:
    """Say so when a small image holds objects far brighter than its scene: in memory,
    :func:`~napari_deconvnet.restore` restores the scene around them in its own range
    (:mod:`.dynamic_range`), which a stream of blocks cannot."""
    from .lazy import LAZY_SCENE_LIMIT

    if seen.size > LAZY_SCENE_LIMIT:
        return
    image = np.asarray(seen.compute() if is_dask(seen) else seen).transpose(layout.inverse)
    if any(images_with_objects(image, net, layout)):
        warnings.warn(
            "this image holds a few objects far brighter than the rest: a streamed restore "
            "runs one pass, block by block, in which the dim scene around them loses up to "
            "10 dB or more; dn.restore (or the command line with a .tif output) restores the "
            "scene in its own range (napari_deconvnet.core.dynamic_range)",
            UserWarning,
            stacklevel=3,
        )


def _units(blocks: list, colour: int | None) -> list[tuple]:
    """Blocks grouped into tasks: one each, or with `colour`, all samples of a place.

    A unit is ``(batch, sidx)``; with `colour` its batch index along that
    axis is ``None`` (every sample).
    """
    if colour is None:
        return blocks
    units = []
    for batch, sidx in blocks:
        if batch[colour] == 0:
            units.append((batch[:colour] + (None,) + batch[colour + 1 :], sidx))
    return units


def _file_calibration(psf: Any, info: dict[str, Any]) -> tuple[Any, dict[str, float]]:
    """An *airy* or *widefield* PSF kind without ``pixel_size``/``z_step`` takes them
    from the source file's calibration (:func:`~.psf.calibrated_kind`), as the
    command line and the widgets do (each of a list of PSFs, one per channel, alike).
    Returns the PSF(s) and what was taken."""
    from .psf import calibrated_kind

    axes, scale, units = info.get("axes"), info.get("scale"), info.get("units")
    if not axes or scale is None or units is None or not len(scale) == len(units) == len(axes):
        return psf, {}
    keep = [i for i, a in enumerate(axes) if a.upper() != "S"]  # RGB samples have no size
    scale, units = [scale[i] for i in keep], [units[i] for i in keep]
    letters = "".join(axes[i] for i in keep)
    return calibrated_kind(psf, scale, units, letters)


def _owned_units(
    jobs: list[Job], colour: int | None, layout: Any, axes: str
) -> tuple[list[tuple], list[int]]:
    """Every unit of the restore, and the index of the job that restores it: the one
    job's, or with one job per channel (one PSF each), the blocks of each channel."""
    if len(jobs) == 1:
        units = _units(jobs[0].blocks(), colour)
        return units, [0] * len(units)
    at = list(layout.perm).index(axes.index("C"))  # C: a batch axis of one-channel models
    units, owners = [], []
    for c, job in enumerate(jobs):
        for unit in job.blocks():
            if unit[0][at] == c:
                units.append(unit)
                owners.append(c)
    return units, owners


def _psf_record(jobs: list[Job], given: list[Any] | None = None) -> Any:
    """The PSF for the provenance; one per channel with one PSF each: its shape, and for
    a PSF kind (``"widefield"``, a dict of parameters: `given`, one per job) the kind and
    its parameters too, as the in-memory restore records them (session 72: a streamed
    ``--psf widefield`` recorded ``[11, 39, 39]`` alone, its kind and calibration lost)."""
    shapes = [None if job.kernel is None else list(job.kernel.shape) for job in jobs]
    given = list(given or [])
    records: list[Any] = list(shapes)
    from .psf import PSF_KINDS

    if len(given) == len(shapes):
        for i, (psf, shape) in enumerate(zip(given, shapes, strict=True)):
            if isinstance(psf, str):
                psf = {"kind": psf}
            if isinstance(psf, Mapping) and isinstance(psf.get("kind"), str):
                # with the kind's defaults for what was not given (session 73: "gaussian"
                # was recorded without its sigma, which a later version may change)
                defaults = dict(PSF_KINDS[psf["kind"]]) if psf["kind"] in PSF_KINDS else {}
                plain = {k: _plain(v) for k, v in psf.items()}
                records[i] = {"kind": psf["kind"], **defaults, **plain, "shape": shape}
    return records[0] if len(records) == 1 else records


def _plain(value: Any) -> Any:
    """A PSF parameter as JSON holds it (tuples as lists, NumPy numbers as Python's)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unit_region(job: Job, unit: tuple) -> tuple:
    """The region a unit reads (every sample along the colour axis for an RGB unit)."""
    batch, sidx = unit
    region, _ = input_region(job, tuple(0 if i is None else i for i in batch), sidx)
    return tuple(
        slice(None) if d < len(batch) and batch[d] is None else r for d, r in enumerate(region)
    )


def _restore_unit(piece: np.ndarray, job: Job, payload: ModelPayload, unit: tuple) -> np.ndarray:
    """Restore a unit: one block, or every sample of an RGB place through core.colour."""
    batch, sidx = unit
    keep = job.opacity_axis
    if keep is not None and batch[keep] == job.transposed_shape[keep] - 1:  # opacity: kept
        return own_input(piece, job, batch, sidx)
    if None not in batch:
        return restore_block(piece, job, payload, unit)
    axis = batch.index(None)
    piece = np.asarray(piece)
    if job.impulses is not None:  # in RGB, before the samples are mixed
        at = tuple(0 if i is None else i for i in batch)  # (its images: every sample)
        at += (0,) * (piece.ndim - len(job.spatial) - len(at))
        piece = switch_impulses(piece, job.impulses, len(job.spatial), at)
        job = dataclasses.replace(job, impulses=None)
    mixed = to_opponent(piece, axis)
    parts = []
    for k in range(mixed.shape[axis]):
        block = (batch[:axis] + (k,) + batch[axis + 1 :], sidx)
        sample = mixed[(slice(None),) * axis + (slice(k, k + 1),)]
        if keep == axis and k == 3:  # opacity: to_opponent kept it as it was
            parts.append(own_input(sample, job, block[0], sidx))
            continue
        parts.append(restore_block(sample, job, payload, block))
    return from_opponent(np.concatenate(parts, axis=axis), axis)


def _write_block(
    piece: Any,
    reader: Any,
    job: Job,
    payload: ModelPayload,
    block: tuple,
    number: int,
    target: str,
    out_perm: list[int],
    inverse: list[int],
) -> int:
    """Read (when `piece` is None), restore and write one unit, then mark it done."""
    batch, sidx = block
    if piece is None:
        piece = read_region(reader, _unit_region(job, block))
    y = _restore_unit(piece, job, payload, block)
    bounds = job.bounds(sidx)
    channel = len(job.transposed_shape) - job.n_batch - len(job.spatial)
    region_t = (
        tuple(slice(None) if i is None else slice(i, i + 1) for i in batch)
        + (slice(None),) * channel
        + tuple(slice(b0, b1) for b0, b1 in bounds)
    )
    region_o = [region_t[i] for i in inverse]
    target_array(target)[tuple(region_o[i] for i in out_perm)] = y.transpose(inverse).transpose(
        out_perm
    )
    marker = Path(target) / JOB_DIR / "done" / str(number)
    marker.touch()
    return number


#: Names that promise a file, not the OME-Zarr folder restore_to_zarr writes.
FILE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".h5", ".czi", ".nd2")


def _check_target_path(target: Any) -> None:
    """Refuse a target that is no folder path: a file's name, or one under a file."""
    if not isinstance(target, str | os.PathLike):
        raise TypeError(f"target must be a path (str or Path), got {type(target).__name__}")
    path = Path(target)
    if path.name.lower().endswith(FILE_SUFFIXES):
        raise ValueError(
            f"the target {str(target)!r} names a {path.suffix} file, but restore_to_zarr "
            "writes an OME-Zarr folder; name it *.ome.zarr (the command line writes TIFFs)"
        )
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"the target {str(target)!r} lies under {str(parent)!r}, which is a "
                    "file, not a folder"
                )
            break


def _dask_store_paths(x: Any) -> list[Path]:
    """The local paths of the zarr stores (or memory-mapped files) a dask array reads.

    ``da.from_zarr`` keeps the zarr array in the graph layer named
    ``original-...``; its store has a ``root`` (``LocalStore``) or ``path``
    (``FsspecStore``, zarr 2's ``DirectoryStore``); a memory map has a
    ``filename``. Remote stores (URLs) are not local paths and are left out.
    """
    paths = []
    for name, layer in getattr(x.__dask_graph__(), "layers", {}).items():
        if str(name).startswith("original-"):
            for value in layer.values():
                paths += _local_places(value)
    return paths


def _local_places(value: Any) -> list[Path]:
    """The local path a zarr array's store (its ``root`` or ``path``) or a memory map
    (its ``filename``) reads; none for other objects and remote stores (a zarr array
    given as the source was written over, its store deleted, session 70)."""

    def local(place: Any) -> bool:
        return (
            isinstance(place, str | os.PathLike) and bool(str(place)) and "://" not in str(place)
        )

    store = getattr(value, "store", None)
    inner = getattr(value, "path", None) if store is not None else None
    inner = inner.strip("/") if isinstance(inner, str) else ""
    # the array's own folder inside its store (a sibling of it in one group was refused
    # as overlapping the group, review of session 70)
    stores = [getattr(store, "root", None), getattr(store, "path", None)]
    found = [Path(place) / inner if inner else Path(place) for place in stores if local(place)]
    place = getattr(value, "filename", None)
    return found + [Path(place)] if local(place) else found


def _check_not_the_source(target: Path, source: Path) -> None:
    """Refuse a target that is the source, or inside it, or holds it, before
    anything is written (``overwrite=True`` would delete the image being read)."""
    t, s = target.resolve(), source.resolve()
    if t == s or t in s.parents or s in t.parents:
        raise ValueError(
            f"the target {str(target)!r} is the source {str(source)!r} or overlaps it; "
            "restore_to_zarr reads the source while it writes, so write to another path"
        )


def _run_on_cluster(
    client, todo, owned, jobs, payload, reader, xt, args, fingerprint, count, report, stop,
    again="resume=True",
) -> int:  # fmt: skip
    """Blocks as tasks on a dask.distributed cluster, a bounded number in flight.

    `owned` is ``(units, owners)``: each unit and the index in `jobs` of its job."""
    from distributed import as_completed

    blocks, owners = owned
    [payload_f] = client.scatter([payload], broadcast=True)
    job_fs = client.scatter(list(jobs), broadcast=True)
    window = max(2, 2 * sum(client.nthreads().values()))
    queue = list(todo)
    path_based = isinstance(reader[0], PathSource)
    total = len(blocks)

    def submit(n: int) -> Any:
        piece = None
        if not path_based:
            region = _unit_region(jobs[owners[n]], blocks[n])
            piece = client.compute(xt[region]) if is_dask(xt) else read_region(reader, region)
        return client.submit(
            _write_block,
            piece,
            reader if path_based else None,
            job_fs[owners[n]],
            payload_f,
            blocks[n],
            n,
            *args,
            key=f"deconvnet-write-{fingerprint[:16]}-{n}",
            pure=False,
        )

    pending = as_completed()
    live = set()
    try:
        for _ in range(min(window, len(queue))):
            f = submit(queue.pop(0))
            live.add(f)
            pending.add(f)
        for f in pending:
            f.result()
            live.discard(f)
            count += 1
            report(count)  # the count of this loop (the caller's is not updated until the end)
            if stop is not None and stop.is_set():
                raise Cancelled(
                    f"restoration cancelled after {count} of {total} blocks; run again with "
                    f"{again} to continue"
                )
            if queue:
                g = submit(queue.pop(0))
                live.add(g)
                pending.add(g)
    except BaseException:
        client.cancel(list(live))
        raise
    return count
