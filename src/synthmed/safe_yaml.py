"""A small YAML emitter for JSON-like values: the front matter of dataset cards.

PyYAML is not a dependency of synthmed, and a card needs only mappings, lists, strings,
numbers, booleans and null. Safety comes from quoting: a string is written plain only when
it is a short run of letters, digits and ``_ . + -`` that YAML cannot read as anything but
that string; every other string is double-quoted with each character outside printable
ASCII escaped, so a source path or model name can never change the document's structure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Plain scalars: start with a letter, no spaces, colons, hashes or quotes.
PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]*$")
# Words YAML 1.1 (PyYAML) reads as booleans or null: never plain.
RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def dump(value: Mapping[str, Any]) -> str:
    """A YAML document (block style, two-space indent) for a mapping of JSON-like values."""
    return "".join(line + "\n" for line in _mapping_lines(value, 0))


def quote(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (escapes per the YAML spec)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def scalar(value: Any) -> str:
    """One scalar: null, a boolean, a number (NaN and infinities in YAML's spelling) or a
    string, plain when :data:`PLAIN` allows, else double-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # YAML 1.1 (PyYAML) reads "1e-05" as a string: its floats need a dot.
        return text.replace("e", ".0e") if "e" in text and "." not in text else text
    if isinstance(value, str):
        plain = PLAIN.match(value) and value.lower() not in RESERVED
        return value if plain else quote(value)
    raise TypeError(f"safe_yaml: cannot write a {type(value).__name__}")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"safe_yaml: mapping keys must be strings, not {type(key).__name__}")
    return key if KEY.match(key) and key.lower() not in RESERVED else quote(key)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _mapping_lines(value: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for k, v in value.items():
        head = f"{pad}{_key(k)}:"
        if isinstance(v, Mapping) and v:
            lines += [head, *_mapping_lines(v, indent + 2)]
        elif _is_list(v) and v:
            lines += [head, *_list_lines(v, indent + 2)]
        else:
            lines.append(f"{head} {_empty_or_scalar(v)}")
    return lines


def _list_lines(value: Sequence[Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for v in value:
        if isinstance(v, Mapping) and v:
            # "- " then the mapping's first line; its other lines line up under the first key.
            inner = _mapping_lines(v, indent + 2)
            lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
        elif _is_list(v) and v:
            inner = _list_lines(v, indent + 2)
            lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
        else:
            lines.append(f"{pad}- {_empty_or_scalar(v)}")
    return lines


def _empty_or_scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if _is_list(value):
        return "[]"
    return scalar(value)
