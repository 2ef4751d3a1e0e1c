"""Training-free geometric verification from frozen backbone features.

``ransac``: ArtMiner's affine verification (a pair score and a detection box) and RANSAC-Flow's coarse
homography; ``align``: two images → homography and check images (``segswap align``).
"""
