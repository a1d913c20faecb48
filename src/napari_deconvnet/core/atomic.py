"""Atomic writes: a file or a folder appears complete under its name, or not at all.

Every writer of the package (model files, checkpoints, exports, TIFF and
OME-Zarr images) writes through these helpers: the data goes to a hidden
temporary file or folder beside the target, is flushed to disk (fsync), and
is renamed into place only when complete. A failed write leaves nothing
under the target name, and an existing file there untouched.

A file is replaced in one rename. A folder takes two: the old one aside to
``.<name>.old``, the new one in. If the machine crashes between them, the
target is missing and its previous version is complete in ``.<name>.old``;
the next write to the target, or :func:`recover_folder`, renames it back.

Temporary files and folders are created with ``os.open(..., 0o666)`` and
``os.mkdir(..., 0o777)``: the kernel applies the process umask itself, so
the result gets the mode of any new file, and the umask is never read or
changed (changing it, even for a moment, races with other threads).

Nothing here imports torch.

Examples
--------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> with atomic_file(target) as tmp:
...     _ = tmp.write_text("complete")
>>> target.read_text()
'complete'
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_file",
    "atomic_folder",
    "fsync",
    "new_temp_file",
    "recover_folder",
    "write_atomic",
]


#: Longest file name most file systems take (ext4, APFS, NTFS: 255 bytes)
_NAME_MAX = 255


def _temp_name(path: Path, suffix: str) -> Path:
    """A hidden name beside `path`; a long name is shortened to fit the file system's
    limit (a valid name of 240 bytes and more failed: "File name too long")."""
    tail = f".{secrets.token_hex(6)}{suffix}"
    name = path.name
    while len(f".{name}{tail}".encode()) > _NAME_MAX and name:
        name = name[:-1]
    return path.parent / f".{name}{tail}"


def new_temp_file(path: Path) -> Path:
    """A new empty file beside `path`, created exclusively with the umask's mode."""
    path = Path(path)
    for _ in range(100):
        tmp = _temp_name(path, ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {path}")


def _new_temp_folder(path: Path) -> Path:
    """A new empty folder beside `path`, created with the umask's mode."""
    for _ in range(100):
        tmp = _temp_name(path, ".tmp")
        try:
            os.mkdir(tmp, 0o777)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary folder beside {path}")


def fsync(path: Path | str, *, folder: bool = False) -> None:
    """Flush `path` to disk (skipped where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file, then every folder (deepest first) under `root`."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync(os.path.join(folder, name))
        fsync(folder, folder=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file beside `path`; flush it and rename it over `path` when done.

    The folder is created if it is missing. If the block raises, the
    temporary file is deleted and `path` is left as it was.

    Parameters
    ----------
    path : path
        The file to write.

    Yields
    ------
    Path
        An empty file in the same folder, to write to (by name).

    Raises
    ------
    ValueError
        `path` is a folder.
    """
    path = Path(path)
    if path.is_dir():  # found before anything is written (the rename said "Is a directory")
        raise ValueError(f"{path} is a folder; give the path of a file to write")
    make_parent(path)
    tmp = new_temp_file(path)
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync(path.parent, folder=True)


def make_parent(path: Path) -> None:
    """Create `path`'s folder (with its parents); a file in the way is a ValueError that
    names it (session 73: ``FileExistsError: [Errno 17] File exists: 'at/afile'``)."""
    for parent in [path.parent, *path.parent.parents]:
        if parent.is_symlink() and not parent.exists():
            raise ValueError(f"cannot write {path}: {parent} is a broken link")
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"cannot write {path}: {parent} is a file, not a folder; give a path "
                    "in a folder"
                )
            break
    path.parent.mkdir(parents=True, exist_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write the bytes `data` to `path` with :func:`atomic_file`.

    A crash leaves the old file or the new one, never a part.
    """
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def _aside(path: Path) -> Path:
    """Where the previous version of folder `path` waits while the new one moves in."""
    return path.parent / f".{path.name}.old"


def recover_folder(path: str | os.PathLike) -> bool:
    """Finish or undo a folder replacement that a crash interrupted.

    :func:`atomic_folder` replaces an existing folder in two renames (the old
    folder aside to ``.<name>.old``, then the new one in). After a crash
    between the two, `path` is missing and its previous content is complete
    under ``.<name>.old``: this renames it back. A ``.<name>.old`` left beside
    an existing `path` (a crash while deleting it) is deleted.

    Returns
    -------
    bool
        True when the previous version was put back.
    """
    path = Path(path)
    old = _aside(path)
    if not old.is_dir() or old.is_symlink():
        return False
    if not os.path.lexists(path):
        os.replace(old, path)
        fsync(path.parent, folder=True)
        return True
    shutil.rmtree(old, ignore_errors=True)
    return False


#: Files that mark a folder as a zarr store (v2 or v3), which a write may replace.
ZARR_MARKS = (".zattrs", ".zgroup", ".zarray", "zarr.json")
#: The folder in which a streamed restore keeps its job (an unfinished OME-Zarr:
#: :mod:`~napari_deconvnet.core.ome_zarr`), which a write may replace too.
JOB_DIR = ".napari_deconvnet_job"


def replaceable_folder(folder: Path) -> bool:
    """Whether `folder` is a zarr store, an unfinished restore's target or empty: what
    :func:`atomic_folder` and ``restore_to_zarr(..., overwrite=True)`` replace."""
    marks = (*ZARR_MARKS, JOB_DIR)
    return any((folder / mark).exists() for mark in marks) or not any(folder.iterdir())


def swap_folder(new: Path, path: Path) -> None:
    """Put the folder `new` in the place of the folder `path`: `path` renamed aside to
    ``.<name>.old``, `new` renamed in, the parent flushed and the old one deleted. A
    crash between the two renames leaves the old one complete aside, which
    :func:`recover_folder` renames back."""
    old = _aside(path)
    if old.exists():  # (a deletion a crash interrupted)
        shutil.rmtree(old)
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    fsync(path.parent, folder=True)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; flush it and swap it in when done.

    The swap renames an existing `path` aside to ``.<name>.old``, renames the
    new folder to `path`, flushes the parent folder and deletes the old one.
    Readers never see a half-written folder under `path`. A crash before the
    swap leaves `path` as it was (and a hidden ``.<name>.*.tmp`` folder); a
    crash between the two renames leaves `path` missing and the previous
    version complete in ``.<name>.old``, which :func:`recover_folder` (run
    at the start of every write) renames back. One writer per target.

    Parameters
    ----------
    path : path
        The folder to write (an existing file, zarr store or empty folder
        there is replaced).

    Raises
    ------
    ValueError
        `path` is a folder that holds anything but a zarr store: a user's
        folder is never deleted (the napari writer replaced one with its
        files).

    Yields
    ------
    Path
        An empty folder beside `path`, to fill.
    """
    path = Path(path)
    make_parent(path)
    recover_folder(path)
    if path.is_dir() and not path.is_symlink() and not replaceable_folder(path):
        raise ValueError(
            f"{path} is a folder that holds other files than a zarr store; it is not "
            "replaced (it would be deleted): give a new name, or delete it first"
        )
    tmp = _new_temp_folder(path)
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.is_dir() and not path.is_symlink():
            swap_folder(tmp, path)
        else:
            if os.path.lexists(path):
                path.unlink()
            os.replace(tmp, path)
            fsync(path.parent, folder=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
