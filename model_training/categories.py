"""ALMA's scientific categories, and which may be listed as similar to which.

Every ALMA proposal is filed under one of five scientific categories
(`SCIENTIFIC_CATEGORIES`, spelled as proposals and the archive spell them).
The rest of this module derives ``similarity.category_compat`` from them.

The paper (Stoehr et al. 2024, "Results") limits the images listed as
similar to "data from a similar scientific category, to avoid scientifically
nonsensical similarities, such as between a galactic disc and a
protoplanetary disc", and builds the list of acceptable categories "by
analysing the statistics of scientific categories that have been used
together in ALMA publications". This module does that.

**The rule.** Two categories A and B are compatible when at least
``min_papers`` publications (default 5) use data of both, *and* those are
at least ``min_fraction`` (default 5 %) of the publications of the less
used of the two: ``n(A and B) >= f * min(n(A), n(B))``, the overlap
coefficient. Why this measure: what matters to an astronomer looking at an
image of category A is whether the science of A routinely draws on data of
B. The fraction of the smaller category's papers that also use the other one
answers that without penalising a small category for sharing papers with a
large one (the Jaccard index ``n(A and B) / n(A or B)`` would call
"Stellar evolution" incompatible with "ISM, star formation" merely because
ISM papers are three times as many). The floor of 5 papers keeps one-off
combinations (a single paper that happens to use a calibrator of another
category) from opening a pair. The rule is symmetric, and every category is
compatible with itself. On the demo archive's publications it opens
cosmology–galaxies, galaxies–ISM, ISM–discs, ISM–stellar and discs–stellar
(8–53 % overlap) and keeps galaxies–discs and cosmology–ISM apart (< 1 %).

**Overrides.** The operator may correct the derived table with a CSV file
with the columns ``scientific_category, compatible_category`` and an
optional ``compatible`` (``yes``/``no``, default ``yes``). Each row applies
in both directions: ``yes`` adds the pair, ``no`` removes it; a category
cannot be made incompatible with itself. With ``replace=True`` the file
replaces the derived pairs instead of amending them (only the pairs it lists,
and every category with itself, remain). Rows are stored with
``origin = 'override'``; derived ones with ``origin = 'derived'``.

**Images without a category** (NULL ``scientific_category``) are treated
as compatible with every category of their kind, in both directions: the
category filter exists to keep out pairs that publications show to be
unrelated, and for an image whose category is unknown there is no such
evidence, so it is neither hidden from others nor given an emptier list.
(An archive with no categories at all thus gets no filter.) A category
that occurs in the archive but not in this table is compatible only with
itself.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from tap_schema import Catalogue, Settings, open_catalogue

__all__ = [
    "COSMOLOGY",
    "DISKS",
    "GALAXIES",
    "ISM",
    "SCIENTIFIC_CATEGORIES",
    "STELLAR",
    "CategoryCompatibility",
    "CategoryFileError",
    "CompatibilityRule",
    "apply_override",
    "derive_categories",
    "derive_compatibility",
    "load_compatibility",
    "read_override",
    "read_publications",
    "render_matrix",
    "store_compatibility",
]

COSMOLOGY = "Cosmology and the high-redshift universe"
GALAXIES = "Galaxies and galactic nuclei"
ISM = "ISM, star formation and astrochemistry"
DISKS = "Circumstellar disks, exoplanets and the solar system"
STELLAR = "Stellar evolution and the Sun"
SCIENTIFIC_CATEGORIES = (COSMOLOGY, GALAXIES, ISM, DISKS, STELLAR)

DERIVED = "derived"
OVERRIDE = "override"
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


class CategoryFileError(ValueError):
    """A publications or override file cannot be read as documented."""


@dataclass(frozen=True)
class CompatibilityRule:
    """When publications make two categories compatible (see the module docstring).

    Parameters
    ----------
    min_papers
        Publications that must use data of both categories.
    min_fraction
        Share of the less used category's publications that must also use
        the other one.
    """

    min_papers: int = 5
    min_fraction: float = 0.05

    def __str__(self) -> str:
        return (
            f"compatible when >= {self.min_papers} papers use both and they are "
            f">= {self.min_fraction:.0%} of the papers of the less used category"
        )


@dataclass
class CategoryCompatibility:
    """The compatibility relation between scientific categories.

    Parameters
    ----------
    pairs
        ``(scientific_category, compatible_category) -> origin`` for every
        compatible pair, itself included (``derived`` or ``override``).
    papers
        Publications per category.
    papers_together
        Publications per unordered pair of categories, keyed by the sorted pair.
    n_publications_read
        Rows of the publications file.
    """

    pairs: dict[tuple[str, str], str] = field(default_factory=dict)
    papers: Counter = field(default_factory=Counter)
    papers_together: Counter = field(default_factory=Counter)
    n_publications_read: int = 0

    @property
    def categories(self) -> list[str]:
        """Every category named by a publication or a pair, sorted."""
        names = set(self.papers) | {name for pair in self.pairs for name in pair}
        return sorted(names)

    def is_compatible(self, category: str | None, other: str | None) -> bool:
        """Tell whether an image of ``other`` may be listed as similar to one of ``category``."""
        if category is None or other is None or category == other:
            return True
        return (category, other) in self.pairs

    def matrix(self, categories: Sequence[str | None]) -> np.ndarray:
        """Boolean matrix ``[i, j]``: ``categories[j]`` may be listed for ``categories[i]``."""
        return np.array(
            [[self.is_compatible(a, b) for b in categories] for a in categories], dtype=bool
        ).reshape(len(categories), len(categories))

    def n_publications(self, category: str, other: str) -> int | None:
        """Publications that use both categories (or the one, for a pair with itself)."""
        if not self.n_publications_read:
            return None
        if category == other:
            return self.papers[category]
        return self.papers_together[_unordered(category, other)]

    def digest(self) -> str:
        """Fingerprint of the relation, to tell whether stored neighbour lists used it."""
        text = "\n".join(f"{a}\t{b}" for a, b in sorted(self.pairs) if a != b)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_publications(path: Path) -> list[set[str]]:
    """Read the categories of the data each publication used.

    Parameters
    ----------
    path
        CSV with the columns ``bibcode`` and ``categories`` (names separated
        by ``;``), as the demo archive's ``publications.csv``.

    Returns
    -------
    list of set of str
        One set of categories per publication (duplicate bibcodes are kept
        once; rows without categories are skipped).
    """
    rows = _read_csv(path, required=("bibcode", "categories"))
    papers: dict[str, set[str]] = {}
    for row in rows:
        names = {name.strip() for name in (row["categories"] or "").split(";") if name.strip()}
        if names:
            papers.setdefault((row["bibcode"] or "").strip(), set()).update(names)
    return list(papers.values())


def derive_compatibility(
    papers: Iterable[set[str]], rule: CompatibilityRule | None = None
) -> CategoryCompatibility:
    """Apply the co-occurrence rule to publications (see the module docstring)."""
    rule = rule or CompatibilityRule()
    result = CategoryCompatibility()
    for categories in papers:
        result.n_publications_read += 1
        result.papers.update(categories)
        result.papers_together.update(itertools.combinations(sorted(categories), 2))
    for category in result.papers:
        result.pairs[category, category] = DERIVED
    for (a, b), together in result.papers_together.items():
        smaller = min(result.papers[a], result.papers[b])
        if together >= rule.min_papers and together >= rule.min_fraction * smaller:
            result.pairs[a, b] = result.pairs[b, a] = DERIVED
    return result


def read_override(path: Path) -> list[tuple[str, str, bool]]:
    """Read an operator's override file: ``(category, compatible_category, compatible)`` rows."""
    rows = _read_csv(path, required=("scientific_category", "compatible_category"))
    overrides = []
    for number, row in enumerate(rows, start=2):
        a = (row["scientific_category"] or "").strip()
        b = (row["compatible_category"] or "").strip()
        flag = (row.get("compatible") or "yes").strip().lower()
        if not a or not b:
            raise CategoryFileError(f"{path}, line {number}: both categories must be given")
        if flag not in _YES | _NO:
            raise CategoryFileError(
                f"{path}, line {number}: compatible must be yes or no, not {flag!r}"
            )
        overrides.append((a, b, flag in _YES))
    return overrides


def apply_override(
    derived: CategoryCompatibility,
    overrides: Iterable[tuple[str, str, bool]],
    replace: bool = False,
) -> CategoryCompatibility:
    """Amend (or with ``replace``, replace) the derived pairs by the operator's rows.

    Each row applies in both directions; self-compatibility always stays.
    """
    pairs = {
        pair: origin for pair, origin in derived.pairs.items() if not replace or pair[0] == pair[1]
    }
    for a, b, compatible in overrides:
        for pair in ((a, b), (b, a)):
            if compatible:
                pairs[pair] = OVERRIDE
            elif a != b:
                pairs.pop(pair, None)
        pairs.setdefault((a, a), OVERRIDE)
        pairs.setdefault((b, b), OVERRIDE)
    return CategoryCompatibility(
        pairs, derived.papers, derived.papers_together, derived.n_publications_read
    )


def store_compatibility(catalogue: Catalogue, compatibility: CategoryCompatibility) -> int:
    """Replace the rows of ``similarity.category_compat`` in one transaction.

    Returns
    -------
    int
        Rows written.
    """
    table = catalogue.table("similarity.category_compat")
    rows = [
        {
            "scientific_category": a,
            "compatible_category": b,
            "n_publications": compatibility.n_publications(a, b),
            "origin": origin,
        }
        for (a, b), origin in sorted(compatibility.pairs.items())
    ]
    with catalogue.begin() as conn:
        conn.execute(table.delete())
        if rows:
            conn.execute(table.insert(), rows)
    return len(rows)


def load_compatibility(catalogue: Catalogue) -> CategoryCompatibility:
    """Read ``similarity.category_compat`` back (counts per pair are not restored)."""
    table = catalogue.table("similarity.category_compat")
    with catalogue.begin() as conn:
        rows = conn.execute(
            sa.select(table.c.scientific_category, table.c.compatible_category, table.c.origin)
        ).all()
    return CategoryCompatibility({(a, b): origin for a, b, origin in rows})


def derive_categories(
    settings: Settings,
    publications: Path,
    override: Path | None = None,
    *,
    replace: bool = False,
    rule: CompatibilityRule | None = None,
) -> CategoryCompatibility:
    """Derive the category compatibility from publications, apply overrides, store it.

    This is the ``vosim categories`` stage.

    Parameters
    ----------
    settings
        The installation whose catalogue is written.
    publications
        CSV of publications (``bibcode``, ``categories``).
    override
        Optional operator file (see the module docstring).
    replace
        Let the override file replace the derived pairs instead of amending them.
    rule
        The thresholds; `CompatibilityRule` defaults when omitted.

    Returns
    -------
    CategoryCompatibility
        What was stored.
    """
    compatibility = derive_compatibility(read_publications(publications), rule)
    if override is not None:
        compatibility = apply_override(compatibility, read_override(override), replace)
    catalogue = open_catalogue(settings)
    try:
        store_compatibility(catalogue, compatibility)
    finally:
        catalogue.dispose()
    return compatibility


def render_matrix(compatibility: CategoryCompatibility) -> str:
    """Draw the relation as a text table: rows query categories, columns listed ones.

    A cell shows ``+`` (derived) or ``o`` (override) when compatible, ``.``
    when not, followed by the number of publications that use both.
    """
    names = compatibility.categories
    if not names:
        return "no categories"
    label = max(len(name) for name in names) + 5
    width = 9
    lines = [" " * label + "".join(f"[{i + 1}]".rjust(width) for i in range(len(names)))]
    marks = {DERIVED: "+", OVERRIDE: "o"}
    for i, a in enumerate(names):
        cells = []
        for b in names:
            mark = marks.get(compatibility.pairs.get((a, b), ""), ".")
            count = compatibility.n_publications(a, b)
            cells.append(f"{mark} {'' if count is None else count}".rjust(width))
        lines.append(f"[{i + 1}] {a}".ljust(label) + "".join(cells))
    lines.append(
        "+ compatible (derived)   o compatible (override)   . not compatible;"
        " numbers: publications using both"
    )
    return "\n".join(lines)


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Read a CSV with a header, checking that the required columns are there."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            missing = [name for name in required if name not in header]
            if missing:
                raise CategoryFileError(
                    f"{path}: missing column(s) {', '.join(missing)}; "
                    f"the header must name {', '.join(required)}"
                )
            return list(reader)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CategoryFileError(f"{path}: cannot be read as CSV: {error}") from error


def _unordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)
