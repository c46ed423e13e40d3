"""TAP 1.1: synchronous and asynchronous ADQL queries, VOSI, DALI examples.

One module per concept: `query` (parameters to result bytes), `query_database`
(read-only execution with limits), `table_upload` (TAP_UPLOAD), `sync` and
`vosi` (HTTP endpoints), `jobs` (the work of an async job, run by
`vo_service.uws`). Results are written by `vo_service.votable`.
"""
