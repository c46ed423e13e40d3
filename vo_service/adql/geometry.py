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
plus a haversine distance (the same rows as pgsphere). When the circle is
given by numbers and holds no pole, the right ascensions it can reach are
checked in SQL too, before the distance: the distance is a Python function,
called only on the rows that pass both ranges. Both backends count a point
within 1e-9 rad of a boundary as inside, as pgsphere does.
"""

from __future__ import annotations

import math

from sqlglot import exp

from vo_service.votable.columns import ResultColumn

from .backends import Backend, call, cast
from .errors import AdqlError
from .scope import Scope
from .translation_types import BOOLEAN, Geom, Value, computed_meta

__all__ = ["GEOMETRY_ARRAYSIZE", "GeometryBackend", "GeometryTranslation", "geometry_kind"]

GEOMETRY_ARRAYSIZE = {"point": "2", "circle": "3", "polygon": "*"}
TOLERANCE_DEG = 1e-9 * 57.29577951308232
"""pgsphere's EPSILON (1e-9 rad) in degrees: its comparisons are that lenient."""
_WINDOW_MARGIN_DEG = 1e-6
"""Added to a cone's right ascension half-width: far above the rounding of either side."""


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
        window = _ra_window(ra, ra0, dec0, radius)
        if window is not None:
            prefilter = exp.And(this=prefilter, expression=window)
        within = exp.LTE(this=call("adql_distance", ra, dec, ra0, dec0), expression=reach.copy())
        return exp.Paren(this=exp.And(this=prefilter, expression=within))


def _ra_window(ra: exp.Expr, ra0: exp.Expr, dec0: exp.Expr, radius: exp.Expr) -> exp.Expr | None:
    """Return the right ascensions a cone of numbers can reach, as a condition (None: any).

    A point within ``r`` of (ra0, dec0) lies within ``asin(sin r / cos dec0)``
    of ra0 in right ascension, when the circle holds no pole. The ranges are
    those of [0, 360), across 0 where the window is; a value outside [0, 360)
    is left to the distance, which is periodic in right ascension. The
    condition only drops rows the distance would drop: the answer is unchanged.
    """
    values = [_number(value) for value in (ra0, dec0, radius)]
    if any(value is None for value in values):
        return None
    centre, dec, reach = values[0] % 360.0, values[1], values[2] + TOLERANCE_DEG
    if reach < 0 or abs(dec) + reach >= 89.0:
        return None
    sine = math.sin(math.radians(reach)) / math.cos(math.radians(dec))
    half = math.degrees(math.asin(min(1.0, sine))) + _WINDOW_MARGIN_DEG
    if half >= 90.0:
        return None
    low, high = centre - half, centre + half
    ranges = [(max(low, 0.0), min(high, 360.0))]
    if low < 0:
        ranges.append((low + 360.0, 360.0))
    if high > 360.0:
        ranges.append((0.0, high - 360.0))
    condition: exp.Expr = exp.or_(
        exp.LT(this=ra.copy(), expression=exp.Literal.number("0.0")),
        exp.GTE(this=ra.copy(), expression=exp.Literal.number("360.0")),
        *(
            exp.Between(
                this=ra.copy(),
                low=exp.Literal.number(repr(start)),
                high=exp.Literal.number(repr(end)),
            )
            for start, end in ranges
        ),
    )
    return exp.Paren(this=condition)


def _number(value: exp.Expr) -> float | None:
    """Return the value of a numeric literal (signed, in parentheses or not), else None."""
    if isinstance(value, exp.Paren):
        return _number(value.this)
    if isinstance(value, exp.Neg):
        inner = _number(value.this)
        return None if inner is None else -inner
    if isinstance(value, exp.Literal) and not value.is_string:
        try:
            number = float(value.this)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def geometry_kind(meta: ResultColumn) -> str | None:
    """Return the geometry a column holds, from its xtype (None for anything else)."""
    if meta.xtype in GEOMETRY_ARRAYSIZE:
        return meta.xtype
    if meta.xtype is not None and meta.xtype.lower() == "adql:region":
        return "region"
    return None


class GeometryTranslation:
    """The translation of the geometry functions (ADQL 2.1, section 2.4)."""

    def _geometry_function(self, name: str, node: exp.Anonymous, scope: Scope) -> Value:
        arguments = list(node.expressions)
        if name in ("POINT", "CIRCLE", "BOX", "POLYGON") and arguments:
            first = arguments[0]
            if isinstance(first, exp.Literal) and first.is_string:
                frame = first.this.strip().upper()
                if frame and not frame.startswith("ICRS"):
                    raise self.error(
                        f"coordinate system {first.this!r} is not supported: use 'ICRS'", first
                    )
                arguments = arguments[1:]
        if name in ("CONTAINS", "INTERSECTS"):
            self._arity(node, name, 2, 2)
            condition = self._geometric_condition(name, arguments, scope, node)
            return Value(
                exp.Case(
                    ifs=[exp.If(this=condition, true=exp.Literal.number(1))],
                    default=exp.Literal.number(0),
                ),
                computed_meta("int"),
            )
        if name == "POINT":
            coords = self._numbers(name, node, arguments, scope, 2, 2)
            return self._geom_value(Geom("point", coords=coords))
        if name == "CIRCLE":
            coords = self._centred_shape(name, node, arguments, scope, 1)
            return self._geom_value(Geom("circle", coords=coords))
        if name == "BOX":
            coords = self._centred_shape(name, node, arguments, scope, 2)
            return self._geom_value(box_polygon(*coords))
        if name == "POLYGON":
            values = [self.value(argument, scope) for argument in arguments]
            if values and all(v.geom is not None and v.geom.kind == "point" for v in values):
                coords = tuple(
                    c
                    for v in values
                    for c in (self.geometry.coord(v.geom, 1), self.geometry.coord(v.geom, 2))
                )
            else:
                for value in values:
                    self._numeric(node, value, name)
                coords = tuple(v.sql for v in values)
            if len(coords) < 6 or len(coords) % 2:
                raise self.error("POLYGON needs at least three vertices (ra, dec pairs)", node)
            return self._geom_value(Geom("polygon", coords=coords))
        if name in ("COORD1", "COORD2"):
            self._arity(node, name, 1, 1)
            point = self._geom_argument(arguments[0], scope, node, ("point",))
            index = 1 if name == "COORD1" else 2
            return Value(self.geometry.coord(point, index), computed_meta("double", unit="deg"))
        if name == "COORDSYS":
            self._arity(node, name, 1, 1)
            self._geom_argument(arguments[0], scope, node, ("point", "circle", "polygon", "region"))
            return Value(exp.Literal.string("ICRS"), computed_meta("char"))
        if name == "DISTANCE":
            if len(arguments) == 4:
                numbers = self._numbers(name, node, arguments, scope, 4, 4)
                first, second = Geom("point", coords=numbers[:2]), Geom("point", coords=numbers[2:])
            else:
                self._arity(node, name, 2, 2)
                first = self._geom_argument(arguments[0], scope, node, ("point",))
                second = self._geom_argument(arguments[1], scope, node, ("point",))
            return Value(self.geometry.distance(first, second), computed_meta("double", unit="deg"))
        if name == "AREA":
            self._arity(node, name, 1, 1)
            geom = self._geom_argument(
                arguments[0], scope, node, ("point", "circle", "polygon", "region")
            )
            return Value(self.geometry.area(geom), computed_meta("double", unit="deg**2"))
        self._arity(node, name, 1, 1)
        geom = self._geom_argument(
            arguments[0], scope, node, ("point", "circle", "polygon", "region")
        )
        try:
            return self._geom_value(self.geometry.centroid(geom))
        except AdqlError as error:
            raise self.error(error.message, node) from None

    def _geom_value(self, geom: Geom) -> Value:
        meta = computed_meta(
            "double", arraysize=GEOMETRY_ARRAYSIZE[geom.kind], xtype=geom.kind, unit="deg"
        )
        return Value(None, meta, geom)

    def _numbers(
        self,
        name: str,
        node: exp.Expr,
        arguments: list[exp.Expr],
        scope: Scope,
        low: int,
        high: int,
    ) -> tuple[exp.Expr, ...]:
        if not low <= len(arguments) <= high:
            raise self.error(
                f"{name} takes {low} numbers (after an optional coordinate system)", node
            )
        values = [self.value(argument, scope) for argument in arguments]
        for value in values:
            self._numeric(node, value, name)
        return tuple(v.sql for v in values)

    def _centred_shape(
        self, name: str, node: exp.Expr, arguments: list[exp.Expr], scope: Scope, sizes: int
    ) -> tuple[exp.Expr, ...]:
        """Coordinates of a CIRCLE or BOX given by a centre POINT or by two numbers, then sizes."""
        if len(arguments) == sizes + 1:
            centre = self._geom_argument(arguments[0], scope, node, ("point",))
            size = self._numbers(name, node, arguments[1:], scope, sizes, sizes)
            return (self.geometry.coord(centre, 1), self.geometry.coord(centre, 2), *size)
        return self._numbers(name, node, arguments, scope, sizes + 2, sizes + 2)

    def _geom_argument(
        self, argument: exp.Expr, scope: Scope, node: exp.Expr, kinds: tuple[str, ...]
    ) -> Geom:
        value = self.value(argument, scope)
        if value.geom is None or value.geom.kind not in kinds:
            wanted = " or ".join(k.upper() for k in kinds if k != "region")
            raise self.error(
                f"{str(node.this).upper()} needs a {wanted} here, not {self._kind(value)}", node
            )
        return value.geom

    def _geometric_condition(
        self, name: str, arguments: list[exp.Expr], scope: Scope, node: exp.Expr
    ) -> exp.Expr:
        regions = ("point", "circle", "polygon", "region")
        first = self._geom_argument(arguments[0], scope, node, regions)
        second = self._geom_argument(arguments[1], scope, node, regions)
        try:
            if name == "CONTAINS":
                return self.geometry.contains(first, second)
            return self.geometry.intersects(first, second)
        except AdqlError as error:
            raise self.error(error.message, node) from None

    def _geometric_predicate(self, node: exp.Binary, scope: Scope) -> Value | None:
        """``CONTAINS(…) = 1`` and its variants as a plain condition, so indexes apply."""
        if not isinstance(node, exp.EQ | exp.NEQ):
            return None
        sides = (node.this, node.expression)
        for function, other in (sides, sides[::-1]):
            if (
                isinstance(function, exp.Anonymous)
                and str(function.this).upper() in ("CONTAINS", "INTERSECTS")
                and isinstance(other, exp.Literal)
                and not other.is_string
                and other.this in ("0", "1")
            ):
                name = str(function.this).upper()
                self._arity(function, name, 2, 2)
                condition = self._geometric_condition(
                    name, list(function.expressions), scope, function
                )
                wanted = (other.this == "1") == isinstance(node, exp.EQ)
                sql = condition if wanted else exp.Not(this=exp.Paren(this=condition))
                return Value(sql, computed_meta(BOOLEAN))
        return None
