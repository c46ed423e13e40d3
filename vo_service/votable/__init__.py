"""VOTable 1.4 writing, shared by TAP, DataLink and similarity results.

`columns` (FIELD metadata of a result), `formats` (RESPONSEFORMAT and the
output formats), `writers` (a result, batch by batch, in any format),
`values` and `tabledata` (how values are written), `service_descriptor`
(DataLink 1.1 service descriptors, written into any of these VOTables).
"""
