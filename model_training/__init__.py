"""Floor 2: the pipeline stages that turn FITS images into vectors and neighbour lists.

One package per stage of the data flow, each importing only the stages
before it: `ingest` (FITS → cut-outs, previews, ObsCore rows), `demo_archive`
(the synthetic archive), `learn` (SimCLR training and the embedding),
`evaluate` (scores, baselines, tuning), `neighbours` (exact top-k, quick
select) and `publish` (the export into an archive's own database), with
`categories` beside them. Reads and writes the catalogue through
``tap_schema``; never imports ``vo_service``.
"""
