"""Prepare a PostgreSQL catalogue for translated ADQL: pgsphere and a few SQL helpers.

The helpers are one-line SQL functions, which PostgreSQL inlines into the
query, so a pgsphere index on an expression still applies:

- ``vosim_point/vosim_circle/vosim_polygon(double precision[])`` build
  pgsphere objects from DALI coordinates in degrees (pgsphere 1.2 in Debian
  12 has no polygon constructor from numbers, only the ``spoly`` aggregate);
- ``vosim_region(text)`` reads the STC-S ``POLYGON ICRS ra1 dec1 …`` that
  ``ivoa.obscore.s_region`` stores (NULL for any other shape);
- ``vosim_contains``, ``vosim_intersects``, ``vosim_distance`` (degrees),
  ``vosim_area`` (square degrees) and ``vosim_coord`` wrap pgsphere's
  operators for each pair of types (Debian 12's pgsphere has no
  ``spoint_dwithin``; a cone is ``spoint @ scircle``);
- ``vosim_dot(real[], real[])`` and ``vosim_dot(real[], text)`` (the
  space-separated text an uploaded array column is stored as): the dot
  product, NULL when the lengths differ (`similarity_udf`).
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

__all__ = ["install", "installed"]

_REGIONS = ("scircle", "spoly")

_NUMBER = "[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?"
"""A number in a vector written as text (the same rule as `similarity_udf.dot`)."""

_STATEMENTS: list[str] = [
    "CREATE EXTENSION IF NOT EXISTS pg_sphere",
    """CREATE OR REPLACE FUNCTION vosim_point(coords double precision[]) RETURNS spoint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT spoint(radians(coords[1]), radians(coords[2])) $$""",
    """CREATE OR REPLACE FUNCTION vosim_circle(coords double precision[]) RETURNS scircle
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT scircle(spoint(radians(coords[1]), radians(coords[2])), radians(coords[3])) $$""",
    """CREATE OR REPLACE FUNCTION vosim_polygon(coords double precision[]) RETURNS spoly
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT spoly(spoint(radians(coords[i]), radians(coords[i + 1])) ORDER BY i)
          FROM generate_series(1, array_length(coords, 1) - 1, 2) AS i $$""",
    r"""CREATE OR REPLACE FUNCTION vosim_region(stcs text) RETURNS spoly
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN upper(split_part(btrim(stcs), ' ', 1)) = 'POLYGON' THEN
          vosim_polygon(ARRAY(
            SELECT CAST(word AS double precision)
            FROM regexp_split_to_table(btrim(stcs), '\s+') WITH ORDINALITY AS w(word, n)
            WHERE word ~ '^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$'
            ORDER BY n)) END $$""",
    """CREATE OR REPLACE FUNCTION vosim_coord(coords double precision[], i integer)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coords[i] $$""",
    """CREATE OR REPLACE FUNCTION vosim_distance(a spoint, b spoint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT degrees(a <-> b) $$""",
    *(
        f"""CREATE OR REPLACE FUNCTION vosim_contains(a {inner}, b {outer}) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT a @ b $$"""
        for inner in ("spoint", *_REGIONS)
        for outer in _REGIONS
    ),
    *(
        f"""CREATE OR REPLACE FUNCTION vosim_intersects(a {first}, b {second}) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT a && b $$"""
        for first in _REGIONS
        for second in _REGIONS
    ),
    *(
        f"""CREATE OR REPLACE FUNCTION vosim_area(a {region}) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT degrees(degrees(area(a))) $$"""
        for region in _REGIONS
    ),
    """CREATE OR REPLACE FUNCTION vosim_dot(a real[], b real[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN cardinality(a) = cardinality(b) AND cardinality(a) > 0 THEN
          (SELECT sum(CAST(x AS double precision) * y) FROM unnest(a, b) AS t(x, y)) END $$""",
    f"""CREATE OR REPLACE FUNCTION vosim_dot(a real[], b text) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN b ~ '^\\s*{_NUMBER}(\\s+{_NUMBER})*\\s*$' THEN vosim_dot(a,
          CAST(regexp_split_to_array(regexp_replace(b, '^\\s+|\\s+$', '', 'g'), '\\s+')
          AS real[])) END $$""",
]

_LOCK_KEY = 0x766F73696D  # "vosim": serialise concurrent start-ups
_MARKED = "vosim_dot(real[], real[])"
"""The function whose comment records which statements were installed."""
_MARK = "vosim helpers " + hashlib.sha256("\n".join(_STATEMENTS).encode()).hexdigest()[:16]


def installed(connection: sa.Connection) -> bool:
    """Whether pgsphere and these very helpers are installed already; reads only.

    A read-only replica or role then starts without writing anything.
    """
    query = sa.text("SELECT obj_description(to_regprocedure(:name), 'pg_proc')")
    return connection.execute(query, {"name": _MARKED}).scalar() == _MARK


def install(connection: sa.Connection) -> None:
    """Create pgsphere and the helper functions, unless they are there already.

    Safe to run at every start-up: when `installed`, nothing is written.

    Parameters
    ----------
    connection
        A SQLAlchemy connection to the catalogue, with the right to create
        extensions and functions; the caller commits.
    """
    if installed(connection):
        return
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    for statement in _STATEMENTS:
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql(f"COMMENT ON FUNCTION {_MARKED} IS '{_MARK}'")
