"""Export into an archive's own database and TAP_SCHEMA (plugin mode).

Not a training stage: it comes after the pipeline. The stage is
`stage.publish`; `selection` says which images may be exported and
`archive_rows` reads what the archive itself says of each image.
"""
