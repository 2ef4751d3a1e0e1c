"""Verification from frozen backbone features: training-free geometry, and SCOTT.

``ransac``: ArtMiner's affine verification (a pair score and a detection box) and RANSAC-Flow's coarse
homography; ``align``: two images → homography and check images (``segswap align``);
``same_object``: SCOTT's trained same-object classifier (``segswap verify``).
"""
