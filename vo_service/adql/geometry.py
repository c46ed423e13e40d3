"""ADQL geometry (ADQL 2.1, section 2.4) on pgsphere and on SQLite.

A geometry value is kept symbolic while the query is translated (`Geom`):
the kind and either its coordinates in degrees, as SQL expressions, or a
packed value read from a derived table, or — for ``s_region`` — the stored
STC-S text. It only becomes SQL where it is used:

- in a predicate or measure (CONTAINS, INTERSECTS, DISTANCE, AREA) it becomes
  a pgsphere object (``spoint``, ``scircle``, ``spoly``) on PostgreSQL, or
  STC-S text handed to the Python functions of `sqlite_functions` on SQLite;
- in a SELECT list it becomes its DALI 1.1 serialisation (point: ra dec;
  circle: ra dec radius; polygon: ra1 dec1 ra2 dec2 …, all degrees), packed
  as ``double precision[]`` on PostgreSQL and as text on SQLite, which
  `TranslatedQuery.decode` turns into one `numpy.ndarray` either way.

A cone, ``CONTAINS(POINT(ra, dec), CIRCLE(ra0, dec0, r)) = 1``, becomes on
SQLite a declination BETWEEN (which the ``obscore_position`` index serves)
plus a haversine distance (NOTES.md: same rows as pgsphere). Both backends
count a point within 1e-9 rad of a boundary as inside, as pgsphere does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from .backends import Backend, call, cast
from .errors import AdqlError

__all__ = ["GEOMETRY_ARRAYSIZE", "Geom", "GeometryBackend"]

GEOMETRY_ARRAYSIZE = {"point": "2", "circle": "3", "polygon": "*"}
TOLERANCE_DEG = 1e-9 * 57.29577951308232
"""pgsphere's EPSILON (1e-9 rad) in degrees: its comparisons are that lenient."""


@dataclass(frozen=True)
class Geom:
    """A geometry value during translation.

    Parameters
    ----------
    kind
        ``point``, ``circle``, ``polygon`` or ``region`` (STC-S text such as
        ``ivoa.obscore.s_region``).
    coords
        Its DALI coordinates in degrees as SQL expressions, when known.
    packed
        Otherwise the SQL value that holds it: a packed DALI value read from a
        derived table, or the STC-S text of a region.
    """

    kind: str
    coords: tuple[exp.Expr, ...] | None = None
    packed: exp.Expr | None = None


def _half(value: exp.Expr) -> exp.Expr:
    return exp.Div(this=exp.Paren(this=value), expression=exp.Literal.number("2.0"), typed=True)


def box_polygon(ra: exp.Expr, dec: exp.Expr, width: exp.Expr, height: exp.Expr) -> Geom:
    """ADQL BOX as the polygon of its four corners (BOX is deprecated in ADQL 2.1)."""
    corners = []
    for sign_ra, sign_dec in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        op_ra = exp.Add if sign_ra > 0 else exp.Sub
        op_dec = exp.Add if sign_dec > 0 else exp.Sub
        corners.append(exp.Paren(this=op_ra(this=ra.copy(), expression=_half(width.copy()))))
        corners.append(exp.Paren(this=op_dec(this=dec.copy(), expression=_half(height.copy()))))
    return Geom("polygon", coords=tuple(corners))


class GeometryBackend:
    """Geometry operations of one database."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.postgres = backend.name == "postgresql"

    # -- values ---------------------------------------------------------------

    def pack(self, geom: Geom) -> exp.Expr:
        """Return the DALI value of a geometry, for a SELECT list."""
        if geom.coords is None:
            assert geom.packed is not None
            return geom.packed
        if self.postgres:
            return exp.Array(expressions=[cast(c, "DOUBLE") for c in geom.coords])
        return call("adql_dali", *geom.coords)

    def coord(self, point: Geom, index: int) -> exp.Expr:
        """COORD1/COORD2 of a point, in degrees."""
        if point.coords is not None:
            return point.coords[index - 1]
        if self.postgres:
            return call("vosim_coord", self.pack(point), exp.Literal.number(index))
        return call("adql_coord", self.pack(point), exp.Literal.number(index))

    def centroid(self, geom: Geom) -> Geom:
        """CENTROID of a point or circle (pgsphere has no polygon centroid)."""
        if geom.kind not in ("point", "circle"):
            raise AdqlError("CENTROID is only supported for circles and points")
        return Geom("point", coords=(self.coord(geom, 1), self.coord(geom, 2)))

    def _object(self, geom: Geom) -> exp.Expr:
        """Return the geometry as the database's own spherical object."""
        if not self.postgres:
            if geom.kind == "region":
                return geom.packed
            if geom.coords is not None:
                return call("adql_geom", exp.Literal.string(geom.kind), *geom.coords)
            return call("adql_geom", exp.Literal.string(geom.kind), geom.packed)
        if geom.kind == "region":
            return call("vosim_region", geom.packed)
        if geom.coords is None:
            return call(f"vosim_{geom.kind}", geom.packed)
        if geom.kind == "point":
            return self._spoint(*geom.coords)
        if geom.kind == "circle":
            ra, dec, radius = geom.coords
            return call("scircle", self._spoint(ra, dec), call("radians", cast(radius, "DOUBLE")))
        return call("vosim_polygon", self.pack(geom))

    @staticmethod
    def _spoint(ra: exp.Expr, dec: exp.Expr) -> exp.Expr:
        return call(
            "spoint", call("radians", cast(ra, "DOUBLE")), call("radians", cast(dec, "DOUBLE"))
        )

    # -- predicates and measures ----------------------------------------------

    def contains(self, inner: Geom, outer: Geom) -> exp.Expr:
        """CONTAINS(inner, outer) as a condition."""
        if outer.kind == "point":
            raise AdqlError("CONTAINS needs a region (CIRCLE, POLYGON, BOX) as second argument")
        if (
            not self.postgres
            and inner.kind == "point"
            and inner.coords is not None
            and outer.kind == "circle"
            and outer.coords is not None
        ):
            return self._cone(inner.coords, outer.coords)
        if self.postgres:
            return call("vosim_contains", self._object(inner), self._object(outer))
        return exp.EQ(
            this=call("adql_contains", self._object(inner), self._object(outer)),
            expression=exp.Literal.number(1),
        )

    def intersects(self, first: Geom, second: Geom) -> exp.Expr:
        """INTERSECTS(first, second) as a condition; with a point it is CONTAINS."""
        if first.kind == "point":
            return self.contains(first, second)
        if second.kind == "point":
            return self.contains(second, first)
        if self.postgres:
            return call("vosim_intersects", self._object(first), self._object(second))
        return exp.EQ(
            this=call("adql_intersects", self._object(first), self._object(second)),
            expression=exp.Literal.number(1),
        )

    def distance(self, first: Geom, second: Geom) -> exp.Expr:
        """DISTANCE between two points, in degrees."""
        if first.kind != "point" or second.kind != "point":
            raise AdqlError("DISTANCE needs two points")
        if self.postgres:
            return call("vosim_distance", self._object(first), self._object(second))
        return call(
            "adql_distance",
            self.coord(first, 1),
            self.coord(first, 2),
            self.coord(second, 1),
            self.coord(second, 2),
        )

    def area(self, geom: Geom) -> exp.Expr:
        """AREA in square degrees."""
        if geom.kind == "point":
            return exp.Literal.number("0.0")
        if self.postgres:
            return call("vosim_area", self._object(geom))
        return call("adql_area", self._object(geom))

    def _cone(self, point: tuple[exp.Expr, ...], circle: tuple[exp.Expr, ...]) -> exp.Expr:
        ra, dec = point
        ra0, dec0, radius = circle
        reach = exp.Paren(
            this=exp.Add(this=radius.copy(), expression=exp.Literal.number(repr(TOLERANCE_DEG)))
        )
        prefilter = exp.Between(
            this=dec.copy(),
            low=exp.Sub(this=dec0.copy(), expression=reach),
            high=exp.Add(this=dec0.copy(), expression=reach.copy()),
        )
        within = exp.LTE(this=call("adql_distance", ra, dec, ra0, dec0), expression=reach.copy())
        return exp.Paren(this=exp.And(this=prefilter, expression=within))
