"""Forms rendered from specs: one field per :class:`~napari_deconvnet.core.specs.Param`.

The dock widgets keep no tables of parameters: each operation's
:class:`~napari_deconvnet.core.specs.Spec` says what it takes, and
:class:`ParamForm` shows it. A field's label is the parameter's ``label``,
its tooltip the ``help`` and the accepted range, its initial value the
``default``:

- ``float`` and ``int``: a spin box bounded by ``low``/``high``, with enough
  decimals for the default;
- ``bool``: a check box; ``choice``: a drop-down of the ``choices``;
- an *optional* number (``None`` means automatic), a ``floats`` (one number or
  one per axis) or a ``str``: a text field. Empty means automatic; its
  placeholder says so. The text is parsed by the parameter itself
  (:meth:`~napari_deconvnet.core.specs.Param.check`), as the command line's is.

:class:`SpecForms` holds the form of one spec at a time (a method, a noise
model, a PSF kind) and builds the others when they are first chosen, so that
an operation registered after the widget was opened is shown too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, LineEdit, SpinBox

from napari_deconvnet.core.specs import Param, Spec

__all__ = ["AUTO", "ParamForm", "SpecForms", "flush_left", "param_widget"]

#: What an empty text field means (its placeholder).
AUTO = "auto"
_BIG = 1e12
_INT_LIMIT = 2**31 - 1


def _tooltip(param: Param) -> str:
    parts = [param.help] if param.help else []
    if param.kind in ("float", "int", "floats") and (param.low, param.high) != (None, None):
        parts.append(f"range {param.range_text()}")
    if param.optional:
        parts.append("empty: automatic" if param.empty == AUTO else f"empty: {param.empty}")
    return "; ".join(parts)


def _scale(param: Param) -> float:
    """A typical magnitude of the parameter (for decimals and steps)."""
    for value in (param.default, param.high, 1.0):
        if isinstance(value, int | float) and value:
            return abs(float(value))
    return 1.0


def _float_box(param: Param) -> FloatSpinBox:
    magnitude = math.floor(math.log10(_scale(param)))
    decimals = max(4 - magnitude, 3)
    if param.low is not None and param.low > 0:  # the least value can be shown
        decimals = max(decimals, -math.floor(math.log10(param.low)))
    decimals = min(decimals, 8)
    least = -_BIG if param.low is None else float(param.low)
    if param.exclusive_low:  # "> low": the least value shown above it
        least += 10.0**-decimals
    box = FloatSpinBox(
        label=param.label,
        min=least,
        max=_BIG if param.high is None else float(param.high),
        step=10.0 ** (magnitude - 1),
    )
    with contextlib.suppress(AttributeError):  # before the value: Qt rounds to the decimals
        box.native.setDecimals(decimals)
    box.value = float(param.default)
    return box


def param_widget(param: Param) -> Any:
    """The magicgui field of one parameter, showing its default.

    Parameters
    ----------
    param : Param
        Its ``label`` labels the field, its ``help`` and range make the tooltip.

    Returns
    -------
    magicgui ValueWidget
        A spin box, check box, drop-down or text field (see the module's notes).
    """
    if param.kind == "bool":
        field: Any = CheckBox(text=param.label, value=bool(param.default))
    elif param.kind == "choice":
        field = ComboBox(label=param.label, choices=param.choices, value=param.default)
    elif param.kind == "float" and not param.optional:
        field = _float_box(param)
    elif param.kind == "int" and not param.optional:
        field = SpinBox(
            label=param.label,
            min=-_INT_LIMIT if param.low is None else int(param.low),
            max=_INT_LIMIT if param.high is None else int(param.high),
            value=int(param.default),
        )
    else:
        field = LineEdit(label=param.label, value=_text(param.default))
        with contextlib.suppress(AttributeError):
            field.native.setPlaceholderText(param.empty if param.optional else "")
    field.tooltip = _tooltip(param)
    return field


def flush_left(*containers: Container) -> None:
    """Let nested containers (forms, the PSF picker) use the whole row of their parent.

    A labelled magicgui container gives every child a label cell; a nested
    container has no label of its own, and its fields have theirs. Call this
    after the containers were added to their parent.
    """
    for container in containers:
        labeled = container._labeled_widget()  # magicgui's row wrapper, if any
        if labeled is not None:
            labeled._label_widget.visible = False


def _check_shown(field: Any, value: Any) -> None:
    """Refuse a value a spin box cannot show (its range; at most ``1e12`` where the
    parameter has no bound): a noise estimated from an image of 1e18 said only
    magicgui's "value ... is outside of the allowed range"."""
    if value is None or not isinstance(field, FloatSpinBox | SpinBox):
        return
    if not field.min <= value <= field.max:
        raise ValueError(
            f"{field.label}: {value:.4g} is beyond what the field can show "
            f"({field.min:g} to {field.max:g}); rescale the image (divide it by a "
            "constant) or call the function from Python"
        )


#: Significant digits a float field keeps of a value set on it (Qt rounds to its decimals)
_DIGITS = 4


def _show_digits(box: FloatSpinBox, value: float) -> None:
    """More decimals on `box` where `value` needs them to keep :data:`_DIGITS`
    significant digits: Match noise's gain of 0.001582 showed 0.002 (3 decimals, set
    from the default's magnitude), so Add noise drew 26% off what was matched."""
    if value == 0 or not math.isfinite(value):
        return
    needed = min(_DIGITS - 1 - math.floor(math.log10(abs(value))), 10)
    with contextlib.suppress(AttributeError):
        if needed > box.native.decimals():
            box.native.setDecimals(needed)


def _text(value: Any) -> str:
    """A value as a text field shows it (None is empty; tuples are comma-separated)."""
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class ParamForm(Container):
    """The fields of one spec's parameters.

    Parameters
    ----------
    spec : Spec
        The operation whose parameters are shown, each at its default.

    Attributes
    ----------
    spec : Spec
    fields : dict of str to magicgui ValueWidget
        One field per parameter, by the parameter's name.

    Examples
    --------
    ``form.values()`` gives ``spec.check``'s dict of the shown values;
    ``form.set_values({"sigma": 0.2})`` shows values (e.g. estimated ones).
    """

    def __init__(self, spec: Spec) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.spec = spec
        self.fields: dict[str, Any] = {p.name: param_widget(p) for p in spec.params}
        self.extend(list(self.fields.values()))

    def values(self) -> dict[str, Any]:
        """The shown values, checked and converted by the spec.

        Raises
        ------
        ValueError, TypeError
            A value out of range or that does not parse; the message starts
            with the field's label.
        """
        out = {}
        for param in self.spec.params:
            try:
                out[param.name] = param.check(self.fields[param.name].value)
            except (ValueError, TypeError) as err:
                raise type(err)(f"{param.label}: {err}") from None
        return out

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Show `values` (checked by the spec; unknown names raise ValueError)."""
        checked = self.spec.check(values)
        for name, value in checked.items():  # all shown or none: checked before any is set
            _check_shown(self.fields[name], value)
        for name, value in checked.items():
            field = self.fields[name]
            if isinstance(field, LineEdit):
                field.value = _text(value)
            elif value is not None:
                if isinstance(field, FloatSpinBox):
                    _show_digits(field, float(value))
                field.value = value

    def reset(self) -> None:
        """Show every parameter's default."""
        self.set_values(self.spec.defaults())


class SpecForms(Container):
    """The parameter form of one spec at a time, among the specs of a family.

    Specs with the same parameters share one form (their values carry over
    when the choice changes between them); a form is built the first time
    its spec is shown.

    Attributes
    ----------
    current : ParamForm or None
        The shown form (None when no spec is shown).
    """

    def __init__(self) -> None:
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self._forms: dict[tuple[Param, ...], ParamForm] = {}
        self.current: ParamForm | None = None

    def form(self, spec: Spec) -> ParamForm:
        """The form of `spec`, built (hidden) if it did not exist yet."""
        form = self._forms.get(spec.params)
        if form is None:
            form = ParamForm(spec)
            form.visible = False
            self._forms[spec.params] = form
            self.append(form)
        return form

    def show(self, spec: Spec | None) -> ParamForm | None:
        """Show the form of `spec` (nothing for None) and hide the others."""
        shown = None if spec is None else self.form(spec)
        if shown is not None:
            shown.spec = spec  # same fields, possibly another operation
        for form in self._forms.values():
            form.visible = form is shown
        self.current = shown
        empty = shown is None or not spec.params
        if empty or self.native.parent() is not None:  # a parentless widget would be a window
            self.visible = not empty
        return shown

    def values(self) -> dict[str, Any]:
        """The shown form's values (``{}`` when none is shown)."""
        return {} if self.current is None else self.current.values()

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Show `values` in the shown form."""
        if self.current is None:
            if values:
                raise ValueError(f"no form is shown to take {sorted(values)}")
            return
        self.current.set_values(values)

    def field(self, name: str) -> Any:
        """The shown form's field of the parameter `name` (ValueError if it has none)."""
        if self.current is None or name not in self.current.fields:
            shown = [] if self.current is None else list(self.current.fields)
            raise ValueError(f"the shown form has no parameter {name!r}; it has {shown}")
        return self.current.fields[name]
