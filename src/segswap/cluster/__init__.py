"""Collections on a Dask cluster: `segswap index|discover|cosegment|eval coseg --scheduler/--workers`.

* :mod:`segswap.cluster.engine_options` — the command-line options checked before anything starts (no Dask
  import: without --scheduler or --workers the single-process path never imports Dask).
* :mod:`segswap.cluster.engine` — :func:`open_engine` connects to a scheduler or starts a local
  cluster; :class:`DaskEngine` is what the collection functions take as ``engine=``: it splits their
  work into tasks that carry paths and small arrays, and gathers the results in order.
* :mod:`segswap.cluster.tasks` — what runs on a worker, with each worker's models loaded once.

Workers write feature shards to a shared folder (the index's ``staging/``, or ``--scratch``); the
client commits them; the graph and clustering stay on the client. docs/scale.md says how to run it.
"""
