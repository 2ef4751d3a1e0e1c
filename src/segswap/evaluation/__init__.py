"""Benchmarks on real data: co-segmentation (P, J), correspondence accuracy, place-recognition recall.

``metrics`` scores masks; ``coseg``, ``corr`` and ``vpr`` read a benchmark layout and run methods on it;
``baselines`` holds the training-free methods they compare against; ``tables`` prints the results.
"""
