"""One parameter of an operation: its type, default, range, label and help.

:class:`Param` checks and parses values (text as the command line passes
it); :class:`~napari_deconvnet.core.specs.Spec` holds a tuple of them. No
torch, no napari.

>>> Param("sigma", "float", 0.1, low=0.0).parse("0.5")
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Param"]

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
    empty : str
        What ``None`` means, in a word a form shows in the empty field
        (``"auto"``; ``"off"`` for a step that only runs when given a value).
    per_axis : bool
        An ``"int"`` that may also be 2 or 3 of them, one per spatial axis (a
        tile of a stack with fewer planes than the lateral tile), each checked.
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
    empty: str = "auto"
    per_axis: bool = False

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
        if self.per_axis and self.kind == "int" and isinstance(value, tuple | list):
            if not 2 <= len(value) <= 3:
                raise ValueError(
                    f"{self._what} must be a number or one per spatial axis (2 or 3), got "
                    f"{len(value)} values {tuple(value)!r}"
                )
            return tuple(self._number(v) for v in value)
        if (
            self.kind == "floats"
            and getattr(value, "ndim", None) == 1
            and hasattr(value, "tolist")
        ):
            value = value.tolist()  # one number per axis, as a list or tuple gives them
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
            shown = number if self.kind == "int" else value
            raise ValueError(f"{self._what} must be {bound}, not {shown!r}")
        return number

    def _show(self, bound: float) -> str:
        return str(int(bound)) if self.kind == "int" else repr(float(bound))

    def parse(self, text: str) -> Any:
        """A value from its text, as typed on the command line (``"auto"`` is None)."""
        word = text.strip()
        if word.lower() in _NONE_WORDS and (self.optional or self.kind == "str"):
            return "" if self.kind == "str" and not word else None
        if self.kind == "bool":
            if word.lower() in _TRUE:
                return True
            if word.lower() in _FALSE:
                return False
            raise ValueError(f"{self._what} must be true or false, not {text!r}")
        if self.kind in ("choice", "str"):
            return self.check(word)
        per_axis = self.kind == "floats" or (self.per_axis and self.kind == "int")
        if per_axis and ("," in word or "x" in word):  # one per axis: 16x256x256, 16,256
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
