"""Ingest: FITS files and their metadata into the catalogue.

The stage is `stage.ingest_folder`; `prepare` is the work done for one file
in a worker process (`worker_pool`), `catalogue_writer` writes the rows.
"""
