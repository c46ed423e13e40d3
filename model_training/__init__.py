"""Floor 2: the pipeline stages that turn FITS images into vectors and neighbour lists.

Ingest (FITS → cut-outs, previews, ObsCore rows), the demo-archive generator,
self-supervised training, embedding, evaluation, hyperparameter search,
nearest neighbours and k-means quick select. Reads and writes the catalogue
through ``tap_schema``; never imports ``vo_service``.
"""
