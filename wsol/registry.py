"""The tables a run picks its parts from by name: models, methods and export formats.

A :class:`Registry` is a ``dict`` of name -> builder that a user's code can add to:
``wsol.register_model``, ``wsol.register_method`` and ``wsol.register_export`` call
:meth:`Registry.register`, which warns when a name that is there already is replaced.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")

_TABLES: dict[str, Registry] = {}  # each table by the key that picks from it


class Registry(dict[str, T]):
    """Names -> builders of one kind (``what`` names the config key that picks them).

    Args:
        what: the key that picks an entry, for messages (``model.arch``).
        entries: the built-in entries.

    Example:
        >>> colours = Registry("colour", {"red": 1})
        >>> colours.register("blue", 2)
        >>> sorted(colours)
        ['blue', 'red']
    """

    def __init__(self, what: str, entries: Mapping[str, T] | None = None):
        super().__init__(entries or {})
        self.what = what
        _TABLES[what] = self

    def register(self, name: str, value: T) -> None:
        """Add ``name``, replacing (with a warning) the entry of that name.

        Raises:
            ValueError: ``name`` is not a non-empty string.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a {self.what} name must be a non-empty string, got {name!r}")
        if name in self:
            warnings.warn(
                f"{self.what} {name!r} was registered already; the new one replaces it",
                RegistryWarning,
                stacklevel=3,
            )
        self[name] = value

    def unregister(self, name: str) -> None:
        """Remove ``name`` (what a test that registered it does when it is done).

        Raises:
            KeyError: ``name`` is not registered.
        """
        del self[name]


def registered_names(what: str) -> list[str]:
    """The names in the table that the key ``what`` picks from (``cam.method``), or none
    while the module that makes the table is not imported: what a config accepts beyond
    its built-in choices, asked without importing the models or methods.

    Example:
        >>> _ = Registry("shape", {"circle": 1})
        >>> registered_names("shape"), registered_names("no such key")
        (['circle'], [])
    """
    table = _TABLES.get(what)
    return list(table) if table is not None else []


class RegistryWarning(UserWarning):
    """A registered name replaced another entry of that name."""
