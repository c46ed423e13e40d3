"""Neighbours: the exact top-k of every public image, in its kind and category.

The stage is `stage.compute_neighbours`; `store` writes the lists.
"""
