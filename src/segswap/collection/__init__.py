"""Collections: a persistent index, detail retrieval, discovery and co-segmentation, on the pair model.

* :func:`segswap.collection.update.update_index` — index a folder (SQLite + memory-mapped features +
  FAISS over regional descriptors), incrementally; :class:`segswap.collection.index.CollectionIndex`
  reads an index.
* :func:`segswap.collection.search.search` — shortlist by descriptor, re-rank by the Eq. 3 score.
* :func:`segswap.collection.discover.discover` — the correspondence graph (Eq. 4) over each image's
  nearest neighbours, its leading eigenvectors, k-means: repeated patterns.
* :func:`segswap.collection.cosegment.cosegment_images` — the graph's leading eigenvector as a
  foreground potential, refined with GrabCut: one mask per image.
"""
