"""Harvest: an archive's image products, from its ObsCore over TAP, into the catalogue.

The stage is `stage.harvest_archive` (``vosim harvest``); `listing` reads the
archive's ``ivoa.obscore`` through pyvo, `download` fetches each file
(directly or through DataLink), `records` is the bookkeeping that makes a
harvest incremental and restartable. Each file is then ingested by the
ingest stage's own per-file work and catalogue writer.
"""
