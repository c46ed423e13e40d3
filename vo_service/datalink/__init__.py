"""DataLink 1.1: ``{links}`` of each record, and the fragment for an archive's own.

`links` answers ``/datalink?ID=…``; `fragment` gives the rows and the service
descriptor an archive adds to its own ``{links}`` responses.
"""
