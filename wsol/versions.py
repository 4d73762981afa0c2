"""Whether the installed torch and torchvision go together, said in one line.

A torchvision built for another torch (another release, or another build of the same
one: a CPU torch with PyPI's CUDA torchvision) fails on import with "operator
torchvision::nms does not exist" at the end of a long traceback. :func:`check_torch_pair`
finds the mismatch from the packages' metadata alone, before anything imports them;
:func:`torchvision_failure` turns the import's own error into the same line. Both name
the versions that go together and the pip command that installs them.

The pairing rule: for torch 2.x, torchvision's minor version is torch's plus 15 and the
patch versions agree (torch 2.14.1 with torchvision 0.29.1, 2.11.0 with 0.26.0), and both
are the same build: the same local tag (``+cpu``, ``+cu130``, ``+rocm6.4``, or none).
``WSOL_SKIP_VERSION_CHECK=1`` skips the check (a build of one's own).
"""

from __future__ import annotations

import os
import re
from importlib import metadata

from wsol.errors import WsolError

__all__ = ["TorchVersionError", "check_torch_pair", "pair_problem", "torchvision_failure"]

WHEEL_INDEX = "https://download.pytorch.org/whl/"
SKIP_ENV = "WSOL_SKIP_VERSION_CHECK"
# torch 2.x pairs with torchvision 0.(x + 15)
_MINOR_OFFSET = 15
_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")  # no pre-release, no dev build
# the builds PyTorch's own index publishes; another local tag (a source build's
# "+git1a2b3c") says nothing about the pairing
_BUILD = re.compile(r"^(cpu|cu\d+|rocm[\d.]+|xpu)$")


class TorchVersionError(WsolError, RuntimeError):
    """torch and torchvision are installed in versions or builds that do not go
    together (or torchvision cannot be imported)."""


def _split(version: str) -> tuple[tuple[int, int, int] | None, str]:
    """``((major, minor, patch), local tag)`` of a version string; None where its
    release is not ``X.Y[.Z]``."""
    release, _, local = version.partition("+")
    m = _RELEASE.match(release)
    if m is None:
        return None, local
    return (int(m[1]), int(m[2]), int(m[3] or 0)), local


def matching_torchvision(torch_version: str) -> str | None:
    """The torchvision release that goes with ``torch_version`` (``"2.14.1+cpu"`` ->
    ``"0.29.1"``), or None where the rule does not cover it (torch 1.x, a pre-release,
    a build of one's own)."""
    release, local = _split(torch_version)
    if release is None or release[0] != 2 or (local and not _BUILD.match(local)):
        return None
    return f"0.{release[1] + _MINOR_OFFSET}.{release[2]}"


def install_command(torch_version: str) -> str:
    """The pip command that installs ``torch_version`` (its build kept) with the
    torchvision that goes with it."""
    release, local = _split(torch_version)
    vision = matching_torchvision(torch_version)
    base = ".".join(map(str, release)) if release else torch_version.partition("+")[0]
    if local and _BUILD.match(local):
        return (
            f"pip install torch=={base}+{local} torchvision=={vision}+{local} "
            f"--index-url {WHEEL_INDEX}{local}"
        )
    # PyPI's build has no local tag, and "==0.29.1" is met by an installed 0.29.1+cpu:
    # only a reinstall replaces another build of the same release
    return f"pip install --force-reinstall torch=={base} torchvision=={vision}"


def pair_problem(torch_version: str | None, vision_version: str | None) -> str | None:
    """Why these versions of torch and torchvision do not go together, in one line
    that ends with the pip command for a pair that does; None where they do or where
    the rule cannot tell (torch unknown, torch 1.x, a source build).

    Args:
        torch_version: torch's version as installed (``"2.14.1+cpu"``); None: unknown.
        vision_version: torchvision's; None: not installed.

    Returns:
        The line, or None.

    Example:
        >>> print(pair_problem("2.14.1+cpu", "0.28.0+cpu"))  # doctest: +NORMALIZE_WHITESPACE
        torch 2.14.1+cpu and torchvision 0.28.0+cpu do not go together (torch 2.14 needs
        torchvision 0.29); install a matching pair: pip install torch==2.14.1+cpu
        torchvision==0.29.1+cpu --index-url https://download.pytorch.org/whl/cpu
        >>> pair_problem("2.14.1+cpu", "0.29.1+cpu") is None
        True
    """
    if torch_version is None:
        return None
    vision = matching_torchvision(torch_version)
    if vision is None:
        return None
    fix = f"install a matching pair: {install_command(torch_version)}"
    if vision_version is None:
        return (
            f"torchvision is not installed (torch {torch_version} needs torchvision "
            f"{vision}); {fix}"
        )
    t_release, t_local = _split(torch_version)
    v_release, v_local = _split(vision_version)
    if v_release is None:
        return None
    needed = vision.rsplit(".", 1)[0]
    if v_release[:2] != (0, t_release[1] + _MINOR_OFFSET):
        return (
            f"torch {torch_version} and torchvision {vision_version} do not go together "
            f"(torch {t_release[0]}.{t_release[1]} needs torchvision {needed}); {fix}"
        )
    known = [tag for tag in (t_local, v_local) if not tag or _BUILD.match(tag)]
    if len(known) == 2 and t_local != v_local:  # a source build's tag tells nothing
        return (
            f"torch {torch_version} and torchvision {vision_version} are different builds "
            f"({t_local or 'PyPI'} and {v_local or 'PyPI'}): torchvision's operators "
            f"will not load; {fix}"
        )
    return None


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_torch_pair() -> None:
    """Check the installed torch and torchvision from their metadata (imports neither;
    a few milliseconds). Does nothing where ``WSOL_SKIP_VERSION_CHECK`` is set, or
    where torch's metadata is missing (an unusual install: the import speaks then).

    Raises:
        TorchVersionError: they do not go together; its message is
            :func:`pair_problem`'s line.
    """
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        return
    problem = pair_problem(_installed("torch"), _installed("torchvision"))
    if problem is not None:
        raise TorchVersionError(problem)


def torchvision_failure(error: BaseException) -> TorchVersionError | None:
    """The one-line error for an exception raised while importing torchvision (the
    ``RuntimeError`` "operator torchvision::nms does not exist" of a torchvision built
    for another torch, an ``ImportError`` of torchvision or of its compiled part); None
    for any other exception, a :class:`WsolError` included."""
    if isinstance(error, WsolError):
        return None
    text = str(error)
    if isinstance(error, ImportError):
        name = error.name or ""
        if not name.startswith("torchvision") and "torchvision" not in text:
            return None
    elif not (
        isinstance(error, RuntimeError) and "torchvision::" in text and "does not exist" in text
    ):
        return None
    torch_version = _installed("torch")
    fix = (
        install_command(torch_version)
        if torch_version and matching_torchvision(torch_version)
        else f"pip install torch torchvision --index-url {WHEEL_INDEX}cpu (CPU builds)"
    )
    first = text.strip().splitlines()[-1] if text.strip() else type(error).__name__
    return TorchVersionError(
        f"torchvision {_installed('torchvision') or '(not installed)'} does not load with "
        f"torch {torch_version or '(unknown)'} ({first[:120]}); install a matching pair: "
        f"{fix}"
    )
