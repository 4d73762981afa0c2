"""The one error base of wsol, and the one way to say "unknown X; valid: ...".

Every error a user can fix by changing the command, the config or an input file is a
:class:`WsolError`; the CLI prints it as one line and exits with status 2. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from collections.abc import Iterable

# A Python object's default repr, as PIL puts the stream it read into its messages
# ("cannot identify image file <_io.BytesIO object at 0x7f...>").
_OBJECT_REPR = re.compile(r"<[A-Za-z_][\w.]* object at 0x[0-9A-Fa-f]+>")


class WsolError(Exception):
    """An error in what wsol was asked to do (a config, a path, a file), not in wsol.

    Every error a user can fix derives from it (:class:`wsol.config.ConfigError`,
    ``ModelError``, ``DataError``, ...); the CLI prints it as one line and exits 2.

    Args:
        message: one line that says what is wrong and what is valid.

    Returns:
        The exception, to raise.

    Raises:
        Nothing itself; catch it around any wsol call.

    Example:
        >>> import wsol
        >>> try:
        ...     wsol.load_config(None, ["boxes.threshold=2"])
        ... except wsol.WsolError as e:
        ...     print(e)
        boxes.threshold must be in [0, 1], got 2.0
    """


class UsageError(WsolError, ValueError):
    """An argument that is not one of its valid choices or lies out of its range."""


def unknown_choice(what: str, value: object, valid: Iterable[str]) -> str:
    """``"unknown cam.method 'x'; valid: cam, gradcam, ..."``: the message for a name
    that is not one of ``valid`` (listed sorted)."""
    return f"unknown {what} {quote(value)}; valid: {', '.join(sorted(valid))}"


def closest_names(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` names of ``valid`` that ``name`` was likely meant to be, best first:
    the same name in another case, then names spelled alike (:mod:`difflib`), then names
    that hold it as a word (``cat`` -> ``tiger cat``).

    Example:
        >>> closest_names("tabby", ["tabby cat", "tiger cat", "Egyptian cat", "dog"])
        ['tabby cat']
        >>> closest_names("Dgo", ["cat", "dog"])
        ['dog']
    """
    names = [v for v in dict.fromkeys(valid) if isinstance(v, str)]
    low = name.strip().lower()
    by_lower: dict[str, list[str]] = {}
    for v in names:
        by_lower.setdefault(v.lower(), []).append(v)
    out = list(by_lower.get(low, []))
    out += [m for c in difflib.get_close_matches(low, list(by_lower), n=n) for m in by_lower[c]]
    if low:
        words = re.compile(rf"(^|[\s_\-,]){re.escape(low)}($|[\s_\-,])")
        out += [v for v in names if words.search(v.lower())]
    return [v for v in dict.fromkeys(out) if v != name][:n]


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'dog'?)"`` for a name not in ``valid``: its closest names, or
    "" when none is close."""
    close = closest_names(name, valid)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def guesses(names: Iterable[str], valid: Iterable[str], limit: int = 3) -> str:
    """``"; 'dgo' (did you mean 'dog'?)"`` for each of the first ``limit`` of ``names``
    that has close names in ``valid``: the end of a message about unknown names."""
    valid = list(valid)
    out = [f"; {n!r}{g}" for n in list(names)[:limit] if (g := did_you_mean(n, valid))]
    return "".join(out)


_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxtuple, _QUOTE.maxdict = 3, 8, 8, 4
_QUOTE.maxset, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlong = 8, 60, 60, 40


def quote(value: object, limit: int = 120) -> str:
    """``repr(value)`` cut to a short prefix, for a value quoted in an error message.

    Built piece by piece (:mod:`reprlib`) rather than cut after the fact: a config list
    made of YAML aliases can hold billions of items that a full ``repr`` would spell out.
    """
    text = _QUOTE.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plain_reason(text: str, name: str = "the file") -> str:
    """``text`` with every Python object's repr in it (``<_io.BytesIO object at
    0x7f...>``) replaced by ``name``: a reason a person can read and compare.

    Args:
        text: a message, often ``str(exception)`` from a library.
        name: what the object stood for, e.g. the file's path.

    Returns:
        The message, unchanged where it held no such repr.

    Example:
        >>> plain_reason("cannot identify image file <_io.BytesIO object at 0x7f3a>")
        'cannot identify image file the file'
    """
    return _OBJECT_REPR.sub(name, text)
