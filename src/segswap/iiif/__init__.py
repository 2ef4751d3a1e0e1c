"""Digital libraries: collections published through IIIF, and results handed back to IIIF viewers.

* :func:`segswap.iiif.index.index_manifest` — `segswap index MANIFEST --index IDX`: read a Presentation 2.1
  or 3.0 manifest, or a collection of them (:mod:`~segswap.iiif.manifests`), fetch each canvas's image from
  its Image API service at the size the index needs into ``IDX/iiif-cache/`` (:mod:`~segswap.iiif.cache`,
  over :mod:`~segswap.iiif.http`: bounded parallel requests, retries with backoff), and index that folder
  with each file's manifest, canvas and label (:mod:`segswap.collection.canvases`).
* :mod:`segswap.iiif.annotations` — `--annotations FILE` of `search` and `discover`: a W3C Web Annotation
  page (IIIF Presentation 3 ``AnnotationPage``) targeting ``canvas-id#xywh=…`` in canvas coordinates.

Libraries (docs/iiif.md says why): iiisight reads manifests (v2 normalised to v3) and ``info.json``;
httpx makes the requests; iiif-prezi3's models build and check the annotation pages.
"""
