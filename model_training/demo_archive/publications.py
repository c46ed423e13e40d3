"""Fictitious publications for the demo archive: which categories papers use together.

The paper limits similar images to scientifically compatible categories,
derived from how often categories appear together in ALMA publications. The
demo archive has no real bibliography, so it draws papers whose categories
co-occur as ALMA's plausibly do: Cosmology with Galaxies and ISM with
Circumstellar disks often, a protoplanetary disc with a high-redshift galaxy
never.
"""

import math
from collections.abc import Mapping
from datetime import date

import numpy as np

from model_training.categories import (
    COSMOLOGY,
    DISKS,
    GALAXIES,
    ISM,
    SCIENTIFIC_CATEGORIES,
    STELLAR,
)

CO_OCCURRENCE: Mapping[frozenset[str], float] = {
    frozenset((COSMOLOGY, GALAXIES)): 1.0,
    frozenset((COSMOLOGY, ISM)): 0.05,
    frozenset((GALAXIES, ISM)): 0.5,
    frozenset((GALAXIES, STELLAR)): 0.1,
    frozenset((GALAXIES, DISKS)): 0.02,
    frozenset((ISM, DISKS)): 1.0,
    frozenset((ISM, STELLAR)): 0.35,
    frozenset((DISKS, STELLAR)): 0.35,
}
"""How readily a paper combines data of two categories; pairs not listed never meet
(a protoplanetary disc and a high-redshift galaxy in one paper)."""

PAPER_SHARES: Mapping[str, float] = {
    COSMOLOGY: 0.2,
    GALAXIES: 0.25,
    ISM: 0.25,
    DISKS: 0.2,
    STELLAR: 0.1,
}
"""Share of ALMA papers whose main data come from each category."""

JOURNALS = (
    ("ApJ", 762, 18.0, "."),
    ("A&A", 549, 12.0, "A"),
    ("MNRAS", 428, 9.0, "."),
    ("AJ", 145, 2.0, "."),
)
"""Journal bibstem, volume in 2013, volumes per year and the bibcode's qualifier."""


def draw_publications(
    rng: np.random.Generator, n_papers: int, today: date
) -> list[tuple[str, list[str]]]:
    """Draw fictitious papers (bibcode, categories of the data they used)."""
    papers: dict[str, list[str]] = {}
    while len(papers) < n_papers:
        categories = _paper_categories(rng)
        papers.setdefault(_bibcode(rng, today), categories)
    return list(papers.items())


def _paper_categories(rng: np.random.Generator) -> list[str]:
    """Draw the categories of the data one paper used.

    A paper starts from one category and tries to add up to two more: a
    candidate is drawn in proportion to its `CO_OCCURRENCE` with every
    category already chosen and kept with that same probability, so rare
    pairs stay rare and pairs that never meet never appear together.
    """
    categories = [_draw_category(rng, PAPER_SHARES)]
    for _ in range(int(rng.choice(3, p=[0.6, 0.3, 0.1]))):
        affinity = {
            c: math.prod(CO_OCCURRENCE.get(frozenset((c, chosen)), 0.0) for chosen in categories)
            for c in SCIENTIFIC_CATEGORIES
            if c not in categories
        }
        if sum(affinity.values()) == 0.0:
            break
        candidate = _draw_category(rng, affinity)
        if rng.random() >= affinity[candidate]:
            break
        categories.append(candidate)
    return categories


def _bibcode(rng: np.random.Generator, today: date) -> str:
    """Draw a 19-character ADS bibcode, e.g. ``2021ApJ...912..123S``."""
    year = int(rng.integers(2013, today.year + 1))
    bibstem, first_volume, per_year, qualifier = JOURNALS[int(rng.integers(len(JOURNALS)))]
    volume = first_volume + int(per_year * (year - 2013) + rng.uniform(0.0, per_year))
    page = int(rng.integers(1, 5000 if bibstem == "MNRAS" else 400))
    author = chr(ord("A") + int(rng.integers(26)))
    return f"{year}{bibstem:.<5}{volume:.>4}{qualifier}{page:.>4}{author}"


def _draw_category(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    """Draw one category with probability proportional to its weight."""
    categories = list(weights)
    p = np.array([weights[c] for c in categories])
    return categories[int(rng.choice(len(categories), p=p / p.sum()))]
