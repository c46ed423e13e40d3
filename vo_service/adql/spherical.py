"""Spherical geometry for the SQLite backend: what pgsphere does on PostgreSQL.

SQLite calls these once per row through `sqlite_functions`, with scalar
arguments, so they are plain ``math`` on unit vectors rather than a library
whose objects would cost more to build than the test itself (lsst-sphgeom
and spherical-geometry also only know convex or their own polygon types,
while ADQL polygons may be concave). Semantics follow pgsphere: angles in
degrees at the interface, boundaries inclusive within 1e-9 rad (pgsphere's
EPSILON), polygons are the smaller of the two regions their edges bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "Shape",
    "area",
    "contains",
    "distance",
    "intersects",
    "parse_shape",
]

EPSILON = 1e-9
"""Radians; pgsphere's tolerance in every comparison."""

Vector = tuple[float, float, float]


class Shape:
    """A point, circle or polygon on the unit sphere.

    Parameters
    ----------
    kind
        ``point``, ``circle`` or ``polygon``.
    coords
        DALI coordinates in degrees: ra dec; ra dec radius; ra1 dec1 ….
    """

    __slots__ = ("center", "kind", "radius", "vertices")

    def __init__(self, kind: str, coords: Sequence[float]) -> None:
        self.kind = kind
        if kind == "polygon":
            if len(coords) < 6 or len(coords) % 2:
                raise ValueError("a polygon needs at least three ra, dec pairs")
            self.vertices = [
                _vector(coords[i], coords[i + 1]) for i in range(0, len(coords) - 1, 2)
            ]
            self.center = None
            self.radius = 0.0
        else:
            self.vertices = []
            self.center = _vector(coords[0], coords[1])
            self.radius = math.radians(coords[2]) if kind == "circle" else 0.0


def parse_shape(text: str) -> Shape:
    """Read STC-S (``POLYGON ICRS ra1 dec1 …``, ``CIRCLE ICRS ra dec r``, ``POSITION …``).

    Frame, reference position and flavour words after the shape name are skipped.
    """
    words = text.split()
    if not words:
        raise ValueError("empty STC-S")
    shape = words[0].lower()
    numbers = []
    for word in words[1:]:
        try:
            numbers.append(float(word))
        except ValueError:
            if numbers:
                raise ValueError(f"unexpected {word!r} in STC-S") from None
    kind = {"position": "point", "point": "point", "circle": "circle", "polygon": "polygon"}.get(
        shape
    )
    if kind is None:
        raise ValueError(f"unsupported STC-S shape {words[0]!r}")
    return Shape(kind, numbers)


def _vector(ra: float, dec: float) -> Vector:
    ra, dec = math.radians(ra), math.radians(dec)
    cos_dec = math.cos(dec)
    return (cos_dec * math.cos(ra), cos_dec * math.sin(ra), math.sin(dec))


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _norm(a: Vector) -> float:
    return math.sqrt(_dot(a, a))


def _angle(a: Vector, b: Vector) -> float:
    """Angle between two unit vectors, accurate at small and large angles."""
    return math.atan2(_norm(_cross(a, b)), _dot(a, b))


def distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine form, stable for small angles)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = (
        math.sin((dec2 - dec1) / 2) ** 2
        + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def _in_polygon(point: Vector, vertices: list[Vector]) -> bool:
    """Winding test: the signed angles the edges subtend at the point add up to ±2π inside."""
    if any(_angle(point, v) <= EPSILON for v in vertices):
        return True
    total = 0.0
    count = len(vertices)
    for i in range(count):
        a, b = vertices[i], vertices[(i + 1) % count]
        if _arc_distance(point, a, b) <= EPSILON:
            return True
        # Signed angle between the great circles point→a and point→b.
        na, nb = _cross(point, a), _cross(point, b)
        total += math.atan2(_dot(_cross(na, nb), point), _dot(na, nb))
    return abs(total) > math.pi


def _arc_distance(point: Vector, a: Vector, b: Vector) -> float:
    """Angular distance from a point to the minor arc a–b."""
    normal = _cross(a, b)
    length = _norm(normal)
    if length < 1e-15:
        return _angle(point, a)
    normal = (normal[0] / length, normal[1] / length, normal[2] / length)
    # The point's projection lies on the arc when it is on the inner side of both ends.
    if _dot(_cross(a, point), normal) >= 0 and _dot(_cross(point, b), normal) >= 0:
        return abs(math.asin(max(-1.0, min(1.0, _dot(point, normal)))))
    return min(_angle(point, a), _angle(point, b))


def _arcs_cross(a: Vector, b: Vector, c: Vector, d: Vector) -> bool:
    """Whether minor arcs a–b and c–d intersect."""
    n1, n2 = _cross(a, b), _cross(c, d)
    line = _cross(n1, n2)
    length = _norm(line)
    if length < 1e-15:
        return False
    line = (line[0] / length, line[1] / length, line[2] / length)
    for candidate in (line, (-line[0], -line[1], -line[2])):
        if _arc_distance(candidate, a, b) <= EPSILON and _arc_distance(candidate, c, d) <= EPSILON:
            return True
    return False


def _edges(vertices: list[Vector]) -> list[tuple[Vector, Vector]]:
    return [(vertices[i], vertices[(i + 1) % len(vertices)]) for i in range(len(vertices))]


def contains(inner: Shape, outer: Shape) -> bool:
    """Whether ``outer`` contains ``inner`` (ADQL CONTAINS)."""
    if outer.kind == "circle":
        if inner.kind == "polygon":
            return all(_angle(v, outer.center) <= outer.radius + EPSILON for v in inner.vertices)
        return _angle(inner.center, outer.center) + inner.radius <= outer.radius + EPSILON
    if outer.kind != "polygon":
        return False
    if inner.kind == "point":
        return _in_polygon(inner.center, outer.vertices)
    if inner.kind == "circle":
        return _in_polygon(inner.center, outer.vertices) and all(
            _arc_distance(inner.center, a, b) >= inner.radius - EPSILON
            for a, b in _edges(outer.vertices)
        )
    return (
        all(_in_polygon(v, outer.vertices) for v in inner.vertices)
        and not any(
            _arcs_cross(a, b, c, d)
            for a, b in _edges(inner.vertices)
            for c, d in _edges(outer.vertices)
            if _angle(a, c) > EPSILON and _angle(b, d) > EPSILON
        )
    ) or _same_polygon(inner, outer)


def _same_polygon(first: Shape, second: Shape) -> bool:
    return len(first.vertices) == len(second.vertices) and all(
        any(_angle(v, w) <= EPSILON for w in second.vertices) for v in first.vertices
    )


def intersects(first: Shape, second: Shape) -> bool:
    """Whether two regions overlap (ADQL INTERSECTS)."""
    if first.kind == "point":
        return contains(first, second)
    if second.kind == "point":
        return contains(second, first)
    if first.kind == "circle" and second.kind == "circle":
        return _angle(first.center, second.center) <= first.radius + second.radius + EPSILON
    if first.kind == "circle":
        first, second = second, first
    if second.kind == "circle":
        return _in_polygon(second.center, first.vertices) or any(
            _arc_distance(second.center, a, b) <= second.radius + EPSILON
            for a, b in _edges(first.vertices)
        )
    return (
        any(_in_polygon(v, second.vertices) for v in first.vertices)
        or any(_in_polygon(v, first.vertices) for v in second.vertices)
        or any(
            _arcs_cross(a, b, c, d)
            for a, b in _edges(first.vertices)
            for c, d in _edges(second.vertices)
        )
    )


def area(shape: Shape) -> float:
    """Area in square degrees (spherical cap; polygon as a fan of spherical triangles)."""
    if shape.kind == "point":
        return 0.0
    if shape.kind == "circle":
        steradians = 2 * math.pi * (1 - math.cos(shape.radius))
    else:
        steradians = _polygon_sr(shape.vertices)
    return steradians * (180 / math.pi) ** 2


def _polygon_sr(vertices: list[Vector]) -> float:
    """Solid angle of a simple polygon as a sum of triangles from its first vertex."""
    origin = vertices[0]
    total = 0.0
    for i in range(1, len(vertices) - 1):
        a, b = vertices[i], vertices[i + 1]
        # Van Oosterom & Strackee: tan(Ω/2) = |o·(a×b)| / (1 + o·a + a·b + b·o), signed.
        numerator = _dot(origin, _cross(a, b))
        denominator = 1 + _dot(origin, a) + _dot(a, b) + _dot(b, origin)
        total += 2 * math.atan2(numerator, denominator)
    total = abs(total)
    return min(total, 4 * math.pi - total)
