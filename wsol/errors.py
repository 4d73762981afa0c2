"""The one error base of wsol, and the one way to say "unknown X; valid: ...".

Every error a user can fix by changing the command, the config or an input file is a
:class:`WsolError`; the CLI prints it as one line and exits with status 2. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class WsolError(Exception):
    """An error in what wsol was asked to do (a config, a path, a file), not in wsol."""


class UsageError(WsolError, ValueError):
    """An argument that is not one of its valid choices or lies out of its range."""


def unknown_choice(what: str, value: object, valid: Iterable[str]) -> str:
    """``"unknown cam.method 'x'; valid: cam, gradcam, ..."``: the message for a name
    that is not one of ``valid`` (listed sorted)."""
    return f"unknown {what} {value!r}; valid: {', '.join(sorted(valid))}"
