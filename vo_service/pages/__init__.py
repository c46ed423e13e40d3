"""The HTML pages, the previews and the files.

`handlers` renders the home and similarity pages from what `browse` finds;
`files` serves ``/preview/{key}.png`` and ``/files/{key}.fits``.
"""
