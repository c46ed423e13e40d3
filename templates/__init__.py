"""Jinja2 templates: the HTML pages and the XML documents of the IVOA standards.

A package only so that ``pip install .`` ships the files and code can find
them with `importlib.resources`.
"""
