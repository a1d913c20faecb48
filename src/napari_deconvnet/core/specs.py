"""Specs of every operation family: what it is called, what it does, what it takes.

A *spec* declares one operation of a family — a restoration method, a noise
model or a PSF kind — with its name, a one-line description and its
parameters (type, default, range, label, help). The widgets and the command
line render these specs; nothing outside this module keeps its own list of
names, defaults or ranges.

This module imports neither torch nor napari: listing what exists is cheap.
Each spec names its implementation as ``"module:attribute"``, imported only
when the operation runs.

Adding an operation is one file. Put a module in
:mod:`napari_deconvnet.core.catalog` that calls :func:`register` (or call it
from your own code or test) and every front end offers it:

>>> from napari_deconvnet.core.specs import Param, Spec, register, unregister
>>> def brighten(image, *, factor=2.0):
...     return image * factor
>>> spec = register(Spec(
...     "method", "brighten", "Multiply every pixel by a factor.",
...     params=(Param("factor", "float", 2.0, low=0.0, label="Factor"),),
...     function=brighten, kind="classical"))
>>> spec.check({"factor": "3"})
{'factor': 3.0}
>>> unregister("method", "brighten")

Contracts of the implementations, per family:

- ``"method"`` (``kind="classical"``): ``function(image, [psf,] **params)``
  with `image` a float32 array of ``len(ndim)`` spatial axes that
  :attr:`Spec.ndim` lists (one plane or one volume); `psf` only when
  :attr:`Spec.needs_psf`. Returns an array of the same shape.
- ``"noise"``: ``function(clean, rng, **params)`` with `clean` float32 and
  `rng` a :class:`numpy.random.Generator`; returns the noisy array.
- ``"psf"``: ``function(shape, **params)`` with `shape` a tuple of ints or
  None (then the kind picks its size); returns a non-negative array summing to
  1, of :attr:`Spec.ndim` dimensions.

Optional :attr:`Spec.extra` keys the runners read
(:mod:`napari_deconvnet.core.operations`): ``"iterate"`` names a generator
form of a method taking a stack and yielding ``(done, total)`` (progress per
iteration or tile); ``"image_defaults"`` maps noise (or method) parameters that
default to a statistic of the whole image to ``"min"`` or ``"max"``. Tags: ``"counts"``
marks noise models that draw photon counts (negative intensities warn).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .params import Param

__all__ = [
    "FAMILIES",
    "Param",
    "Spec",
    "SpecTable",
    "get",
    "implementation",
    "list_methods",
    "list_noise_models",
    "list_psfs",
    "parse_params",
    "register",
    "specs",
    "unregister",
]

#: The families of operations, by name.
FAMILIES = ("method", "noise", "psf")


@dataclass(frozen=True)
class Spec:
    """One operation of a family.

    Parameters
    ----------
    family : {"method", "noise", "psf"}
    name : str
        The name users type and menus show.
    description : str
        One line: what it is for.
    params : tuple of Param
        What it takes, besides the image (and the PSF of a deconvolution).
    function : str or callable
        The implementation: ``"package.module:attribute"`` (imported when it
        runs) or a callable.
    kind : str
        Within the family: ``"classical"`` or ``"model"`` for methods.
    needs_psf : bool
        Whether a method takes a PSF.
    ndim : tuple of int
        The spatial dimensionalities it works on: ``(2,)`` plane by plane,
        ``(2, 3)`` planes or volumes. For a PSF kind, what it makes.
    requires : tuple of str
        Optional packages it needs; it is offered only where they import.
    tags : tuple of str
        Free words for front ends, e.g. ``("denoise",)``, ``("deconv",)``.
    """

    family: str
    name: str
    description: str
    params: tuple[Param, ...] = ()
    function: str | Callable | None = None
    kind: str = ""
    needs_psf: bool = False
    ndim: tuple[int, ...] = (2, 3)
    requires: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"spec family must be one of {FAMILIES}, not {self.family!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a spec needs a name, not {self.name!r}")
        names = [n for p in self.params for n in (p.name, *p.aliases)]
        if len(set(names)) != len(names):
            raise ValueError(f"spec {self.name!r} repeats a parameter: {names}")
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @property
    def available(self) -> bool:
        """Whether the optional packages it needs are installed."""
        return all(importlib.util.find_spec(p) is not None for p in self.requires)

    def param(self, name: str) -> Param:
        """The parameter called `name` or one of its aliases (ValueError naming the accepted)."""
        for p in self.params:
            if p.name == name or name in p.aliases:
                return p
        raise ValueError(
            f"{self.family} {self.name!r} does not take {name!r}; its parameters are "
            f"{[p.name for p in self.params] or 'none'}"
        )

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def check(self, params: Mapping[str, Any] | None = None, *, fill: bool = False) -> dict:
        """`params` checked and converted; with `fill`, the others at their defaults.

        Raises
        ------
        ValueError, TypeError
            An unknown parameter (the message lists the accepted ones), or a
            value of the wrong type or out of range.
        """
        out = self.defaults() if fill else {}
        given: dict[str, str] = {}
        for key, value in (params or {}).items():
            param = self.param(key)
            if param.name in given:
                raise ValueError(
                    f"give either {given[param.name]} or {key}, not both: they name the same "
                    f"parameter of {self.family} {self.name!r}"
                )
            given[param.name] = key
            try:
                out[param.name] = param.check(value)
            except (TypeError, ValueError) as err:
                if key == param.name:
                    raise
                text = str(err).replace(param._what, key, 1)
                raise type(err)(f"{text} ({key} is another name of {param.name})") from None
        return out

    def resolve(self) -> Callable:
        """The implementation, imported now if it was named by a string."""
        if callable(self.function):
            return self.function
        if not isinstance(self.function, str) or ":" not in self.function:
            raise ValueError(f"{self.family} {self.name!r} has no implementation")
        return implementation(self.function)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description."""
        return {
            "family": self.family,
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "needs_psf": self.needs_psf,
            "ndim": list(self.ndim),
            "requires": list(self.requires),
            "available": self.available,
            "tags": list(self.tags),
            "params": [p.describe() for p in self.params],
        }


def implementation(ref: str | Callable) -> Callable:
    """A callable, or the one a ``"package.module:attribute"`` string names (imported now)."""
    if callable(ref):
        return ref
    module, sep, attr = str(ref).partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"an implementation is named 'package.module:attribute', not {ref!r}")
    return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------- registry

_REGISTRY: dict[str, dict[str, Spec]] = {family: {} for family in FAMILIES}
_LOCK = threading.RLock()
_DISCOVERED = False


def register(spec: Spec, *, replace: bool = False) -> Spec:
    """Add `spec` to its family, so every front end offers it; returns it.

    Raises
    ------
    ValueError
        If the family already has an operation of that name (unless `replace`).
    """
    if not isinstance(spec, Spec):
        raise TypeError(f"register takes a Spec, not {type(spec).__name__}")
    with _LOCK:
        family = _REGISTRY[spec.family]
        if spec.name in family and not replace and family[spec.name] != spec:
            raise ValueError(
                f"a {spec.family} called {spec.name!r} is already registered; "
                "choose another name or pass replace=True"
            )
        family[spec.name] = spec
    return spec


def unregister(family: str, name: str) -> None:
    """Remove an operation (no error if it is not there)."""
    with _LOCK:
        _REGISTRY[_check_family(family)].pop(name, None)


def _check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    return family


def _discover() -> None:
    """Import every module of :mod:`napari_deconvnet.core.catalog` once."""
    global _DISCOVERED
    with _LOCK:
        if _DISCOVERED:
            return
        _DISCOVERED = True
        from . import catalog

        for info in sorted(pkgutil.iter_modules(catalog.__path__), key=lambda i: i.name):
            importlib.import_module(f"{catalog.__name__}.{info.name}")


def specs(family: str, *, available: bool = True) -> dict[str, Spec]:
    """The registered operations of `family`, by name, in registration order.

    With `available` (default), those whose optional packages are missing are left out.
    """
    _discover()
    with _LOCK:
        items = dict(_REGISTRY[_check_family(family)])
    return {n: s for n, s in items.items() if not available or s.available}


def get(family: str, name: str) -> Spec:
    """One operation by name.

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones), or an operation
        whose optional packages are not installed (it says which).
    """
    every = specs(family, available=False)
    if name not in every:
        raise ValueError(f"unknown {family} {name!r}; accepted names are {list(every)}")
    spec = every[name]
    if not spec.available:
        raise ValueError(
            f"{family} {name!r} needs {', '.join(spec.requires)}; install it with pip"
        )
    return spec


def parse_params(spec: Spec, pairs: Iterable[str]) -> dict[str, Any]:
    """``["k=v", ...]`` (as the command line's ``--param``) checked against `spec`.

    Raises
    ------
    ValueError
        A pair without ``=``, an unknown parameter or a bad value.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"a parameter is written name=value, not {pair!r}")
        if key.strip() in out:  # (the last one was taken silently)
            raise ValueError(f"{key.strip()} is given twice")
        out[key.strip()] = spec.param(key.strip()).parse(value)
    return spec.check(out)


def list_methods(kind: str | None = None, *, models: bool = True) -> dict[str, Spec]:
    """The restoration methods every front end offers, by name.

    Parameters
    ----------
    kind : {"classical", "model"}, optional
        Only this kind.
    models : bool
        Include the shipped models (reads their file headers).

    Returns
    -------
    dict of str to Spec
        Shipped models first (kind ``"model"``), then the classical methods
        whose optional packages are installed.
    """
    out: dict[str, Spec] = {}
    if models and kind in (None, "model"):
        from .model_specs import shipped_model_specs

        out.update(shipped_model_specs())
    if kind in (None, "classical"):
        out.update({n: s for n, s in specs("method").items() if s.kind == "classical"})
    if kind not in (None, "model", "classical"):
        out.update({n: s for n, s in specs("method").items() if s.kind == kind})
    return out


def list_noise_models() -> dict[str, Spec]:
    """The noise models of :func:`~napari_deconvnet.synthesize`, by name."""
    return specs("noise")


def list_psfs() -> dict[str, Spec]:
    """The PSF kinds of :func:`~napari_deconvnet.make_psf`, by name."""
    return specs("psf")


class SpecTable(Mapping):
    """A live, read-only view of a family: ``{name: entry(spec)}`` (for old tables).

    Registered and unregistered operations show at once; nothing is copied.

    Parameters
    ----------
    family : {"method", "noise", "psf"}
    entry : callable
        What each name maps to, from its :class:`Spec`.
    where : callable, optional
        Which specs to keep (e.g. only classical methods).
    """

    def __init__(
        self,
        family: str,
        entry: Callable[[Spec], Any],
        where: Callable[[Spec], bool] | None = None,
    ) -> None:
        self._family = _check_family(family)
        self._entry = entry
        self._where = where or (lambda spec: True)

    def _specs(self) -> dict[str, Spec]:
        return {n: s for n, s in specs(self._family, available=False).items() if self._where(s)}

    def __getitem__(self, name: str) -> Any:
        spec = self._specs().get(name) if isinstance(name, str) else None
        if spec is None:
            raise KeyError(name)
        return self._entry(spec)

    def __iter__(self):
        return iter(self._specs())

    def __len__(self) -> int:
        return len(self._specs())

    def __repr__(self) -> str:
        return f"SpecTable({dict(self)!r})"
