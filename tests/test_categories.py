"""Category compatibility from a hand-made publications file, overrides, storage and the verb."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from model_training.categories import (
    CategoryFileError,
    CompatibilityRule,
    apply_override,
    derive_categories,
    derive_compatibility,
    load_compatibility,
    read_override,
    read_publications,
    render_matrix,
)
from tap_schema import Settings, open_catalogue

COSMO = "Cosmology and the high-redshift universe"
GAL = "Galaxies and galactic nuclei"
ISM = "ISM, star formation and astrochemistry"
DISKS = "Circumstellar disks, exoplanets and the solar system"
STARS = "Stellar evolution and the Sun"


def publications(tmp_path: Path) -> Path:
    """118 papers: cosmology+galaxies often, ISM+discs often, stars+ISM just at the threshold.

    Papers per category: COSMO 30, GAL 40, ISM 45, DISKS 25, STARS 10.
    Together: COSMO+GAL 12 (40 % of 30), ISM+DISKS 10 (40 % of 25),
    ISM+STARS 5 (50 % of 10, exactly the 5-paper floor), GAL+ISM 4 (too few),
    GAL+DISKS 1.
    """
    rows = (
        [f"{COSMO};{GAL}"] * 12
        + [COSMO] * 18
        + [f"{GAL};{ISM}"] * 4
        + [f"{GAL};{DISKS}"]
        + [GAL] * 23
        + [f"{ISM}; {DISKS}"] * 10
        + [f"{ISM};{STARS}"] * 5
        + [ISM] * 26
        + [DISKS] * 14
        + [STARS] * 5
        + [""] * 2
    )
    path = tmp_path / "publications.csv"
    lines = [
        "bibcode,categories",
        *(f'2020ApJ...{i:03d}..1A,"{row}"' for i, row in enumerate(rows)),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rule_on_a_hand_made_file(tmp_path):
    papers = read_publications(publications(tmp_path))
    assert len(papers) == 118
    compatibility = derive_compatibility(papers)
    assert compatibility.papers[GAL] == 40 and compatibility.papers[STARS] == 10
    expected = {(COSMO, GAL), (ISM, DISKS), (ISM, STARS)}
    pairs = {pair for pair in compatibility.pairs if pair[0] != pair[1]}
    assert pairs == expected | {(b, a) for a, b in expected}
    assert all(compatibility.is_compatible(c, c) for c in (COSMO, GAL, ISM, DISKS, STARS))
    assert not compatibility.is_compatible(GAL, DISKS)
    assert compatibility.n_publications(ISM, STARS) == 5
    assert compatibility.n_publications(ISM, ISM) == 45


def test_thresholds(tmp_path):
    papers = read_publications(publications(tmp_path))
    strict = derive_compatibility(papers, CompatibilityRule(min_papers=6, min_fraction=0.05))
    assert not strict.is_compatible(ISM, STARS)
    fraction = derive_compatibility(papers, CompatibilityRule(min_papers=1, min_fraction=0.45))
    assert fraction.is_compatible(ISM, STARS) and not fraction.is_compatible(COSMO, GAL)
    loose = derive_compatibility(papers, CompatibilityRule(min_papers=4, min_fraction=0.05))
    assert loose.is_compatible(GAL, ISM)


def test_uncategorised_images_are_compatible_with_everything(tmp_path):
    compatibility = derive_compatibility(read_publications(publications(tmp_path)))
    assert compatibility.is_compatible(None, GAL) and compatibility.is_compatible(DISKS, None)
    assert compatibility.is_compatible("Unheard of", "Unheard of")
    assert not compatibility.is_compatible("Unheard of", GAL)
    matrix = compatibility.matrix([GAL, DISKS, None])
    assert matrix.tolist() == [[True, False, True], [False, True, True], [True, True, True]]


def test_override_adds_removes_or_replaces(tmp_path):
    derived = derive_compatibility(read_publications(publications(tmp_path)))
    path = tmp_path / "override.csv"
    path.write_text(
        "scientific_category,compatible_category,compatible\n"
        f'"{GAL}","{ISM}",yes\n'
        f'"{ISM}","{STARS}",no\n'
        f'"{GAL}","{GAL}",no\n'
    )
    overrides = read_override(path)
    amended = apply_override(derived, overrides)
    assert amended.pairs[GAL, ISM] == amended.pairs[ISM, GAL] == "override"
    assert not amended.is_compatible(STARS, ISM)
    assert amended.is_compatible(COSMO, GAL) and amended.pairs[COSMO, GAL] == "derived"
    assert (GAL, GAL) in amended.pairs  # a category stays compatible with itself
    replaced = apply_override(derived, overrides, replace=True)
    assert {pair for pair in replaced.pairs if pair[0] != pair[1]} == {(GAL, ISM), (ISM, GAL)}
    assert (STARS, STARS) in replaced.pairs


def test_bad_files_say_what_is_wrong(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("bibcode,category\nx,y\n")
    with pytest.raises(CategoryFileError, match=r"missing column.*categories"):
        read_publications(path)
    path.write_text("scientific_category,compatible_category,compatible\na,b,maybe\n")
    with pytest.raises(CategoryFileError, match="line 2: compatible must be yes or no"):
        read_override(path)
    with pytest.raises(FileNotFoundError):
        read_publications(tmp_path / "missing.csv")


def test_stored_with_origin(any_settings: Settings, tmp_path):
    override = tmp_path / "override.csv"
    override.write_text(f'scientific_category,compatible_category\n"{GAL}","{ISM}"\n')
    derive_categories(any_settings, publications(tmp_path), override)
    catalogue = open_catalogue(any_settings)
    table = catalogue.table("similarity.category_compat")
    with catalogue.begin() as conn:
        rows = {
            (row.scientific_category, row.compatible_category): row
            for row in conn.execute(sa.select(table))
        }
    assert rows[GAL, ISM].origin == "override" and rows[GAL, ISM].n_publications == 4
    assert rows[ISM, STARS].origin == "derived" and rows[ISM, STARS].n_publications == 5
    assert rows[COSMO, COSMO].n_publications == 30
    assert (GAL, DISKS) not in rows
    loaded = load_compatibility(catalogue)
    assert loaded.pairs == {pair: row.origin for pair, row in rows.items()}
    # Derived again without the override: the table is replaced, not appended to.
    derive_categories(any_settings, publications(tmp_path))
    assert not load_compatibility(catalogue).is_compatible(GAL, ISM)


def test_matrix_and_verb(sqlite_settings, tmp_path, monkeypatch, capsys):
    from vo_service.cli import main

    monkeypatch.setenv("VOSIM_DATA_DIR", str(sqlite_settings.data_dir))
    assert main(["categories", str(publications(tmp_path))]) == 0
    printed = capsys.readouterr().out
    assert "118 publications; compatible when >= 5 papers use both" in printed
    line = next(text for text in printed.splitlines() if text.startswith(f"[4] {ISM}"))
    # Columns in name order: DISKS, COSMO, GAL, ISM, STARS.
    assert line.split()[-10:] == ["+", "10", ".", "0", ".", "4", "+", "45", "+", "5"]
    compatibility = derive_compatibility(read_publications(publications(tmp_path)))
    assert render_matrix(compatibility) in printed
    assert main(["categories", str(tmp_path / "missing.csv")]) == 2
