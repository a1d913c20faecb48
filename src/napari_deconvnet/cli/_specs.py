"""The command line's view of the specs: option help, ``--param k=v`` and the ``methods`` listing.

Every name, default and range shown or accepted here comes from
:mod:`napari_deconvnet.core.specs`; nothing is copied.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from ._files import UsageError

FAMILY_TITLES = {"method": "Methods", "noise": "Noise models", "psf": "PSF kinds"}


def _specs() -> Any:
    from napari_deconvnet.core import specs

    return specs


def names(family: str) -> list[str]:
    """Names of a family (methods: the classical ones; models come from ``models``)."""
    specs = _specs()
    if family == "method":
        return list(specs.list_methods(models=False))
    return list(specs.specs(family))


def choices_help(family: str, lead: str) -> str:
    """`lead` and the family's names, for an option's ``--help``."""
    return f"{lead}: {', '.join(names(family))}"


def check_params(spec: Any, given: dict[str, Any], pairs: Sequence[str], flag: str) -> dict:
    """`given` plus ``k=v`` `pairs`, checked against `spec`; a UsageError names the accepted."""
    specs = _specs()
    try:
        out = spec.check(given)
        for key, value in specs.parse_params(spec, pairs or ()).items():
            if key in out:
                raise ValueError(f"{key} is given twice")
            out[key] = value
        return spec.check(out)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{flag}: {err}") from err


def describe_param(param: Any) -> str:
    """One line: ``name=default  type in range: help``."""
    default = "None" if param.default is None else param.default
    if isinstance(default, tuple):
        default = ",".join(f"{v:g}" for v in default)
    where = param.range_text() if param.kind != "bool" else "{true, false}"
    if param.kind in ("str",):
        where = "text"
    alias = f" (alias {', '.join(param.aliases)})" if param.aliases else ""
    return f"{param.name}={default}{alias}  {param.kind} {where}: {param.help or param.label}"


def cmd_methods(args: argparse.Namespace) -> int:
    """Print every method, noise model and PSF kind with its parameters."""
    specs = _specs()
    families = {
        "method": specs.list_methods(models=not args.no_models),
        "noise": specs.list_noise_models(),
        "psf": specs.list_psfs(),
    }
    if args.family:
        families = {args.family: families[args.family]}
    if args.json:
        print(
            json.dumps(
                {f: [s.describe() for s in items.values()] for f, items in families.items()},
                default=str,
            )
        )
        return 0
    for family, items in families.items():
        print(f"{FAMILY_TITLES[family]}:")
        for name, spec in items.items():
            kind = f" [{spec.kind}]" if spec.kind else ""
            psf = " (needs --psf)" if spec.needs_psf else ""
            print(f"  {name}{kind}{psf}  {spec.description}")
            for param in spec.params:
                print(f"      {describe_param(param)}")
        print()
    print("Pass parameters as --param name=value (PSF kinds: --psf KIND --psf-param name=value).")
    return 0
