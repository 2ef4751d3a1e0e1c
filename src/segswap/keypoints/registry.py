"""The keypoint matchers segswap knows, by name: light (no torch), so that names are checked first."""

from __future__ import annotations

from dataclasses import dataclass

from .wheels import LIGHTGLUE_WHEEL, XFEAT_WHEEL, Wheel

#: The value of ``--keypoints`` that turns keypoints off.
NONE = "none"


@dataclass(frozen=True)
class MatcherSpec:
    """A named keypoint matcher: features of one family, matched by LightGlue or by mutual nearest
    neighbours, with the settings that differ from the family's."""

    family: str  # "xfeat", "aliked" or "disk" (segswap.keypoints.matcher.FAMILIES)
    glue: bool  # LightGlue (LighterGlue for XFeat); else mutual nearest neighbours
    conf: dict
    descriptor_dim: int
    wheel: Wheel
    description: str


SPECS: dict[str, MatcherSpec] = {
    # The ratio test (both ways, as hloc's and kornia's "smnn") keeps distinctive matches only: without it
    # unrelated photographs reached 10–20 homography inliers (lab/results.md, "Discovery").
    "xfeat": MatcherSpec("xfeat", False, {"min_cosine": 0.0, "ratio": 0.95}, 64, XFEAT_WHEEL,
                         "XFeat (CVPR 2024) keypoints, mutual nearest neighbours passing a ratio test; the fastest"),
    # 1024 keypoints: LighterGlue's attention grows with their square (on 2 cores a 640-px pair takes
    # 0.22 s at 1024, 0.78 s at 2048, 4.9 s at 4096; lab/performance.md).
    "xfeat-lighterglue": MatcherSpec("xfeat", True, {"filter_threshold": 0.1, "max_keypoints": 1024}, 64, XFEAT_WHEEL,
                                     "XFeat keypoints (1024) matched by LighterGlue"),
    "aliked-lightglue": MatcherSpec("aliked", True, {"filter_threshold": 0.1}, 128, LIGHTGLUE_WHEEL,
                                    "ALIKED-n16 keypoints matched by LightGlue (ICCV 2023)"),
    "disk-lightglue": MatcherSpec("disk", True, {"filter_threshold": 0.1}, 128, LIGHTGLUE_WHEEL,
                                  "DISK keypoints (depth checkpoint) matched by LightGlue"),
}

