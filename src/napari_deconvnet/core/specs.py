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
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import pkgutil
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

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

_KINDS = ("float", "int", "bool", "choice", "str", "floats")
_NONE_WORDS = ("", "none", "auto", "default")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Param:
    """One parameter of an operation.

    Parameters
    ----------
    name : str
        The keyword the implementation takes.
    kind : {"float", "int", "bool", "choice", "str", "floats"}
        Its type. ``"floats"`` is a number or a tuple of numbers (e.g. one
        sigma per axis).
    default : object
        Its default. ``None`` means "automatic" (say in `help` what that is);
        then `optional` must be true.
    low, high : float, optional
        Inclusive range of numbers.
    exclusive_low : bool
        Whether `low` itself is refused (``> low``, e.g. a positive gain).
    choices : tuple, optional
        The accepted values of a ``"choice"``.
    label : str
        What a form shows beside the field (default: the name, spaced).
    help : str
        One sentence: the unit and what changing it does.
    optional : bool
        Whether ``None`` ("automatic") is accepted.
    aliases : tuple of str
        Other names accepted for it (e.g. ``gain`` for a Poisson ``peak``);
        giving two names of one parameter at once is an error.
    """

    name: str
    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    label: str = ""
    help: str = ""
    optional: bool = False
    aliases: tuple[str, ...] = ()
    exclusive_low: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "aliases", tuple(self.aliases))
        if self.kind not in _KINDS:
            raise ValueError(f"Param {self.name!r}: kind {self.kind!r} is not one of {_KINDS}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"Param {self.name!r}: a 'choice' needs its choices")
        if self.default is None and not self.optional and self.kind != "str":
            raise ValueError(f"Param {self.name!r}: default None needs optional=True")
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())
        if self.default is not None:
            object.__setattr__(self, "default", self.check(self.default))

    # ------------------------------------------------------------ values

    def check(self, value: Any) -> Any:
        """`value` converted to this parameter's type, within its range.

        Strings are parsed (as the command line passes them).

        Raises
        ------
        TypeError
            A value of the wrong type.
        ValueError
            A value out of range, or not one of the choices.
        """
        if isinstance(value, str) and self.kind not in ("str", "choice"):
            return self.parse(value)
        if value is None:
            if self.optional or self.kind == "str":
                return None
            raise ValueError(f"{self._what} cannot be None (automatic); give a {self.kind}")
        if self.kind == "bool":
            if isinstance(value, bool) or (_is_number(value) and value in (0, 1)):
                return bool(value)
            raise TypeError(f"{self._what} must be true or false, not {value!r}")
        if self.kind == "choice":
            if value in self.choices:
                return value
            raise ValueError(f"{self._what} must be one of {list(self.choices)}, not {value!r}")
        if self.kind == "str":
            if isinstance(value, str):
                return value
            raise TypeError(f"{self._what} must be a string, not {type(value).__name__}")
        if self.kind == "floats" and isinstance(value, (tuple, list)):
            if not value:
                raise ValueError(f"{self._what} needs at least one number")
            return tuple(self._number(v) for v in value)
        return self._number(value)

    @property
    def _what(self) -> str:
        """The name in messages, with its aliases (``peak (alias gain)``)."""
        if not self.aliases:
            return self.name
        return f"{self.name} (alias {', '.join(self.aliases)})"

    def _number(self, value: Any) -> float | int:
        if not _is_number(value):
            raise TypeError(f"{self._what} must be a number, not {type(value).__name__} {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{self._what} must be finite, not {value!r}")
        if self.kind == "int":
            if number != int(number):
                raise ValueError(f"{self._what} must be a whole number, not {value!r}")
            number = int(number)
        too_low = self.low is not None and (
            number <= self.low if self.exclusive_low else number < self.low
        )
        if too_low or (self.high is not None and number > self.high):
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.exclusive_low else '>='} {self._show(self.low)}")
            if self.high is not None:
                bounds.append(f"<= {self._show(self.high)}")
            bound = " and ".join(bounds)
            raise ValueError(f"{self._what} must be {bound}, not {value!r}")
        return number

    def _show(self, bound: float) -> str:
        return str(int(bound)) if self.kind == "int" else repr(float(bound))

    def parse(self, text: str) -> Any:
        """A value from its text, as typed on the command line (``"auto"`` is None)."""
        word = text.strip()
        if word.lower() in _NONE_WORDS and (self.optional or self.kind == "str"):
            return None if self.kind != "str" or word.lower() != "" else ""
        if self.kind == "bool":
            if word.lower() in _TRUE:
                return True
            if word.lower() in _FALSE:
                return False
            raise ValueError(f"{self._what} must be true or false, not {text!r}")
        if self.kind in ("choice", "str"):
            return self.check(word)
        if self.kind == "floats" and ("," in word or "x" in word):
            parts = word.replace("x", ",").split(",")
            return self.check([_to_float(self._what, w) for w in parts if w.strip()])
        return self.check(_to_float(self._what, word))

    def range_text(self) -> str:
        """The accepted range, for messages and help (e.g. ``[0, 1]``)."""
        if self.kind == "choice":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.exclusive_low else '['}{low}, {high}]"

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (for ``--help``, docs and tests)."""
        out = {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "label": self.label,
            "help": self.help,
            "optional": self.optional,
        }
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        else:
            out["range"] = [self.low, self.high]
        return out


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bytes))


def _to_float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TypeError(f"{name} must be a number, not {text!r}") from None


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
