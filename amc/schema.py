"""The mechanism behind amc/config.py: value rules, key / block fields, block validation.

A params block is a dataclass whose fields are made by :func:`key` (a leaf: default, rule, one-line
description) or :func:`block` (a nested block). :func:`check_block` validates a parsed YAML
mapping against it; :func:`reference_rows` renders it as Markdown table rows.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from amc.errors import InputError


# ----------------------------------------------------------------------------- value rules
@dataclass(frozen=True)
class Rule:
    """A value check and the human-readable form of what it accepts."""

    check: Callable[[Any], bool]
    allowed: str
    choices: tuple[str, ...] = ()  # the allowed strings, for a "did you mean" hint


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def integer(low: int = 0) -> Rule:
    """An integer >= ``low``."""
    text = "a positive integer" if low == 1 else f"an integer >= {low}"
    return Rule(lambda v: _is_int(v) and v >= low, text)


def number(
    low: float = 0.0, high: float = float("inf"), low_open: bool = False, high_open: bool = False
) -> Rule:
    """A number in the interval, open or closed at each end."""

    def check(v: Any) -> bool:
        if not _is_num(v):
            return False
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    if high == float("inf"):
        text = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        text = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return Rule(check, text)


def one_of(*values: Any) -> Rule:
    """Exactly one of ``values``."""
    return Rule(
        lambda v: any(v == x and type(v) is type(x) for x in values),
        _choices(values),
        tuple(x for x in values if isinstance(x, str)),
    )


def _choices(values: Any) -> str:
    return " | ".join("null" if v is None else str(v).lower() for v in values)


def optional(rule: Rule) -> Rule:
    """``rule`` or null."""
    return Rule(lambda v: v is None or rule.check(v), f"null or {rule.allowed}")


def either(first: Rule, second: Rule) -> Rule:
    return Rule(lambda v: first.check(v) or second.check(v), f"{first.allowed} or {second.allowed}")


def list_of(item: Rule, length: int | None = None, distinct: bool = False) -> Rule:
    """A non-empty list whose items follow ``item`` (``length`` items if given)."""

    def check(v: Any) -> bool:
        if not isinstance(v, list) or not v or (length is not None and len(v) != length):
            return False
        if distinct and len({repr(x) for x in v}) != len(v):
            return False
        return all(item.check(x) for x in v)

    size = f"{length} " if length else "a non-empty list of "
    return Rule(check, f"{size}{'distinct ' if distinct else ''}values, each {item.allowed}")


def mapping(value: Rule) -> Rule:
    """A mapping of names to values that follow ``value``."""

    def check(v: Any) -> bool:
        return isinstance(v, dict) and all(
            isinstance(k, str) and value.check(x) for k, x in v.items()
        )

    return Rule(check, f"a mapping name -> {value.allowed}")


TEXT = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
FLAG = one_of(True, False)
FRACTIONS = Rule(
    lambda v: list_of(number(0, 1, True, True), 3).check(v) and abs(sum(v) - 1) < 1e-6,
    "three numbers in (0, 1) summing to 1 (train, val, test)",
)


def key(default: Any, rule: Rule, doc: str, feeds: str | None = None, name: str | None = None):
    """One params key: its default, its rule, a one-line description.

    ``feeds`` names the settings object it becomes a field of (``train``: :class:`TrainSettings`,
    ``model``: the AMC network's config) under ``name`` (default: the key itself).
    """
    meta = {"rule": rule, "doc": doc, "feeds": feeds, "name": name}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def block(cls: type, doc: str):
    """A nested block of keys."""
    return field(default_factory=cls, metadata={"block": cls, "doc": doc})


# ---------------------------------------------------------------------------- validation
def nearest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def unknown_key(name: str, prefix: str, known: list[str]) -> InputError:
    return InputError(
        f"params: unknown key {prefix}{name}",
        hint=f"{nearest(name, known)}valid keys of {prefix.rstrip('.') or 'params.yaml'}: "
        f"{', '.join(known)}",
    )


def check_block(cls: type, tree: Any, prefix: str = "", partial: bool = False) -> dict[str, Any]:
    """Validate one block against its dataclass; return it with missing keys defaulted.

    ``partial``: missing keys stay missing (dataset overrides). The result keeps the order of
    ``tree`` (defaults appended), so tables that record a block stay byte-identical.
    """
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise InputError(
            f"params: {prefix.rstrip('.')} must be a mapping of keys, got {tree!r}",
            hint=f"valid keys: {', '.join(f.name for f in fields(cls))}",
        )
    spec = {f.name: f for f in fields(cls)}
    for name in tree:
        if name not in spec:
            raise unknown_key(str(name), prefix, list(spec))
    out = dict(tree)
    for name, f in spec.items():
        if name not in tree:
            if not partial:
                out[name] = default_of(f)
            continue
        out[name] = _check_value(f, tree[name], prefix + name, partial)
    return out


def default_of(f: Field) -> Any:
    if "block" in f.metadata:
        return check_block(f.metadata["block"], {})
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def _check_value(f: Field, value: Any, dotted: str, partial: bool) -> Any:
    if "block" in f.metadata:
        return check_block(f.metadata["block"], value, dotted + ".", partial)
    rule: Rule = f.metadata["rule"]
    if not rule.check(value):
        guess = nearest(value, list(rule.choices)) if isinstance(value, str) else ""
        raise InputError(
            f"params: {dotted}={value!r} is invalid", hint=f"{guess}use {rule.allowed}"
        )
    return value


# ------------------------------------------------------------------- generated reference
def reference_rows(cls: type, prefix: str) -> list[str]:
    rows = []
    for f in fields(cls):
        dotted = prefix + f.name
        if "block" in f.metadata:
            rows += reference_rows(f.metadata["block"], dotted + ".")
        elif "rule" in f.metadata:
            rule = f.metadata["rule"].allowed.replace("|", "\\|")
            shown = _yaml_scalar(default_of(f))
            rows.append(f"| `{dotted}` | `{shown}` | {rule} | {f.metadata['doc']} |")
    return rows


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
