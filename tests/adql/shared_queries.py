"""ADQL queries run on both backends against the same archive: the results must agree.

Each entry: an id, the query, whether its order is defined (ORDER BY), and the
number of rows expected (None: only compared across backends).
"""

from __future__ import annotations

from .conftest import did

OBS = "ivoa.obscore"
IMG1 = did(1)
CONE = "CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 10.0, -30.0, 0.05)) = 1"

SHARED_QUERIES: list[tuple[str, str, bool, int | None]] = [
    ("top-order", f"SELECT TOP 3 obs_publisher_did, s_ra FROM {OBS} ORDER BY s_ra", True, 3),
    ("distinct-top", f"SELECT DISTINCT TOP 2 band_list FROM {OBS} ORDER BY band_list", True, 2),
    ("offset", f"SELECT obs_publisher_did FROM {OBS} ORDER BY obs_publisher_did OFFSET 5", True, 3),
    (
        "top-offset",
        f"SELECT TOP 2 obs_publisher_did FROM {OBS} ORDER BY obs_publisher_did OFFSET 1",
        True,
        2,
    ),
    ("count-as", f"SELECT COUNT(*) AS n FROM {OBS}", True, 1),
    ("not-in", f"SELECT target_name FROM {OBS} WHERE band_list NOT IN ('7', '3')", False, 2),
    ("is-null", f"SELECT obs_publisher_did FROM {OBS} WHERE obs_release_date IS NULL", False, 1),
    ("is-not-null", f"SELECT obs_publisher_did FROM {OBS} WHERE t_exptime IS NOT NULL", False, 7),
    (
        "not-between",
        f"SELECT obs_publisher_did FROM {OBS} WHERE s_ra NOT BETWEEN 10 AND 11",
        False,
        3,
    ),
    ("nulls-order", f"SELECT t_exptime FROM {OBS} ORDER BY t_exptime", True, 8),
    ("nulls-order-desc", f"SELECT s_xel1 FROM {OBS} ORDER BY s_xel1 DESC, obs_id", True, 8),
    ("like-case", f"SELECT target_name FROM {OBS} WHERE target_name LIKE 'hh%'", False, 1),
    ("ilike", f"SELECT target_name FROM {OBS} WHERE target_name ILIKE 'hh%'", False, 2),
    (
        "concat-lower-upper",
        f"SELECT LOWER(target_name) || '/' || UPPER(band_list) AS label FROM {OBS}",
        False,
        8,
    ),
    (
        "group-having",
        f"SELECT band_list, COUNT(*) AS n, AVG(s_ra) AS mean_ra, MIN(s_dec), MAX(s_dec), "
        f"SUM(s_xel1) FROM {OBS} GROUP BY band_list HAVING COUNT(*) > 1 ORDER BY band_list",
        True,
        1,
    ),
    (
        "case-coalesce",
        f"SELECT obs_publisher_did, CASE WHEN t_exptime > 1000 THEN 'long' WHEN t_exptime > 0 "
        f"THEN 'short' ELSE 'unknown' END AS length_class, COALESCE(t_exptime, -1) AS t "
        f"FROM {OBS} ORDER BY obs_publisher_did",
        True,
        8,
    ),
    (
        "simple-case",
        f"SELECT CASE band_list WHEN '7' THEN 1 WHEN '3' THEN 2 ELSE 0 END AS code FROM {OBS}",
        False,
        8,
    ),
    (
        "cast",
        f"SELECT CAST(s_ra AS INTEGER) AS i, CAST(s_xel1 AS DOUBLE PRECISION) AS d, "
        f"CAST(calib_level AS CHAR(4)) AS c, CAST(s_dec AS BIGINT) AS b, "
        f"CAST(s_ra AS REAL) AS r, CAST(calib_level AS SMALLINT) AS s FROM {OBS}",
        False,
        8,
    ),
    (
        "math",
        f"SELECT ABS(s_dec), CEILING(s_ra), FLOOR(s_dec), ROUND(s_ra, 1), TRUNCATE(s_ra, 1), "
        f"TRUNCATE(-2.678, 2), ROUND(2.5), ROUND(-2.5), MOD(s_xel1, 100), MOD(10.5, 3), "
        f"POWER(2, 10), SQRT(s_resolution), EXP(1), LOG(10), LOG10(1000), PI() "
        f"FROM {OBS} WHERE s_xel1 IS NOT NULL",
        False,
        7,
    ),
    (
        "trig",
        f"SELECT SIN(RADIANS(s_dec)), COS(RADIANS(s_dec)), TAN(0.5), ASIN(0.5), ACOS(0.5), "
        f"ATAN(1), ATAN2(1, 2), COT(1), DEGREES(PI()) FROM {OBS}",
        False,
        8,
    ),
    (
        "bitwise-hex",
        f"SELECT s_xel1 & 0xFF, s_xel1 | 1, s_xel1 ^ 0x0F, ~calib_level, 7 / 2, 7.0 / 2 "
        f"FROM {OBS} WHERE s_xel1 IS NOT NULL",
        False,
        7,
    ),
    (
        "comment",
        f"SELECT obs_id -- the observation\nFROM {OBS} -- all of them\nWHERE calib_level = 2",
        False,
        8,
    ),
    (
        "timestamp-compare",
        f"SELECT obs_publisher_did, obs_release_date FROM {OBS} "
        f"WHERE obs_release_date > '2020-01-01T00:00:00' ORDER BY obs_release_date",
        True,
        4,
    ),
    (
        "timestamp-equal",
        f"SELECT obs_publisher_did FROM {OBS} WHERE obs_release_date = '2020-01-01T00:00:00'",
        False,
        1,
    ),
    (
        "timestamp-between-cast",
        f"SELECT obs_publisher_did FROM {OBS} WHERE obs_release_date BETWEEN "
        f"CAST('2019-01-01' AS TIMESTAMP) AND '2021-12-31T23:59:59.5'",
        False,
        3,
    ),
    (
        "inner-join",
        f"SELECT o.target_name, n.rank, n.neighbour_did FROM similarity.neighbour AS n "
        f"JOIN {OBS} AS o ON o.obs_publisher_did = n.neighbour_did "
        f"WHERE n.obs_publisher_did = '{IMG1}' ORDER BY n.rank",
        True,
        None,
    ),
    (
        "join-neighbours-band",
        f"SELECT TOP 50 n.obs_publisher_did, n.rank, o.band_list, o.obs_release_date "
        f"FROM similarity.neighbour AS n INNER JOIN {OBS} AS o "
        f"ON o.obs_publisher_did = n.neighbour_did "
        f"WHERE o.band_list = '7' AND o.obs_release_date > '2020-01-01T00:00:00' "
        f"ORDER BY n.obs_publisher_did, n.rank",
        True,
        None,
    ),
    (
        "left-join",
        f"SELECT o.obs_publisher_did, i.cutout_rule FROM {OBS} AS o "
        f"LEFT OUTER JOIN similarity.image AS i ON i.obs_publisher_did = o.obs_publisher_did",
        False,
        8,
    ),
    (
        "right-join",
        f"SELECT o.obs_publisher_did, i.obs_publisher_did FROM similarity.image AS i "
        f"RIGHT OUTER JOIN {OBS} AS o ON i.obs_publisher_did = o.obs_publisher_did",
        False,
        8,
    ),
    (
        "full-join",
        f"SELECT o.obs_id, i.peak_snr FROM {OBS} AS o FULL OUTER JOIN similarity.image AS i "
        f"ON i.obs_publisher_did = o.obs_publisher_did",
        False,
        8,
    ),
    (
        "cross-join",
        "SELECT m.model_name, c.origin FROM similarity.model AS m CROSS JOIN "
        "similarity.category_compat AS c",
        False,
        1,
    ),
    (
        "natural-join",
        f"SELECT obs_publisher_did, cutout_rule, band_list FROM similarity.image "
        f"NATURAL JOIN (SELECT obs_publisher_did, band_list FROM {OBS}) AS o",
        False,
        6,
    ),
    (
        "using-join",
        f"SELECT obs_publisher_did, e.model_id, o.target_name FROM similarity.embedding AS e "
        f"JOIN {OBS} AS o USING (obs_publisher_did)",
        False,
        6,
    ),
    (
        "star-join",
        "SELECT * FROM similarity.image AS i JOIN similarity.model AS m "
        "ON m.image_kind = i.image_kind",
        False,
        6,
    ),
    (
        "subquery-in",
        f"SELECT target_name FROM {OBS} WHERE obs_publisher_did IN "
        f"(SELECT neighbour_did FROM similarity.neighbour WHERE rank = 1)",
        False,
        None,
    ),
    (
        "subquery-exists",
        f"SELECT o.target_name FROM {OBS} AS o WHERE EXISTS "
        f"(SELECT 1 FROM similarity.image AS i WHERE i.obs_publisher_did = o.obs_publisher_did)",
        False,
        6,
    ),
    (
        "subquery-scalar",
        f"SELECT obs_publisher_did, (SELECT COUNT(*) FROM similarity.neighbour AS n "
        f"WHERE n.obs_publisher_did = o.obs_publisher_did) AS n_neighbours FROM {OBS} AS o",
        False,
        8,
    ),
    (
        "subquery-from",
        f"SELECT t.band, t.n FROM (SELECT band_list AS band, COUNT(*) AS n FROM {OBS} "
        f"GROUP BY band_list) AS t WHERE t.n >= 1 ORDER BY t.band",
        True,
        4,
    ),
    (
        "with",
        f"WITH seven AS (SELECT obs_publisher_did, s_ra FROM {OBS} WHERE band_list = '7') "
        f"SELECT s.obs_publisher_did, n.rank FROM seven AS s JOIN similarity.neighbour AS n "
        f"ON n.neighbour_did = s.obs_publisher_did ORDER BY s.obs_publisher_did, n.rank",
        True,
        None,
    ),
    (
        "union-order-top",
        f"SELECT obs_publisher_did FROM {OBS} WHERE band_list = '7' UNION "
        f"SELECT obs_publisher_did FROM similarity.image ORDER BY obs_publisher_did",
        True,
        None,
    ),
    (
        "union-all",
        f"SELECT band_list FROM {OBS} UNION ALL SELECT image_kind FROM similarity.image",
        False,
        14,
    ),
    (
        "intersect",
        f"SELECT obs_publisher_did FROM {OBS} INTERSECT SELECT obs_publisher_did "
        f"FROM similarity.embedding",
        False,
        6,
    ),
    (
        "except",
        f"SELECT obs_publisher_did FROM {OBS} EXCEPT SELECT obs_publisher_did "
        f"FROM similarity.image",
        False,
        2,
    ),
    ("cone", f"SELECT obs_publisher_did FROM {OBS} WHERE {CONE}", False, 4),
    (
        "cone-reversed",
        f"SELECT obs_publisher_did FROM {OBS} WHERE 1 = CONTAINS(POINT(s_ra, s_dec), "
        f"CIRCLE(POINT(10.0, -30.0), 0.05))",
        False,
        4,
    ),
    (
        "not-in-cone",
        f"SELECT obs_publisher_did FROM {OBS} WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), "
        f"CIRCLE('ICRS', 10.0, -30.0, 0.05)) = 0",
        False,
        4,
    ),
    (
        "cone-across-ra-zero",
        f"SELECT obs_publisher_did FROM {OBS} WHERE CONTAINS(POINT(s_ra, s_dec), "
        f"CIRCLE(0.005, 0.0, 0.02)) = 1",
        False,
        1,
    ),
    (
        "distance",
        f"SELECT obs_publisher_did, DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', 10, -30)) "
        f"AS d, DISTANCE(s_ra, s_dec, 200, 45) AS d2 FROM {OBS} ORDER BY d",
        True,
        8,
    ),
    (
        "s-region-contains-point",
        f"SELECT obs_publisher_did FROM {OBS} "
        f"WHERE CONTAINS(POINT('ICRS', 10.005, -29.995), s_region) = 1",
        False,
        2,
    ),
    (
        "s-region-intersects-circle",
        f"SELECT obs_publisher_did FROM {OBS} "
        f"WHERE INTERSECTS(s_region, CIRCLE('ICRS', 10.0, -30.0, 0.015)) = 1",
        False,
        3,
    ),
    (
        "s-region-intersects-polygon",
        f"SELECT obs_publisher_did FROM {OBS} WHERE INTERSECTS(s_region, "
        f"POLYGON('ICRS', 9.9, -30.1, 10.015, -30.1, 10.015, -29.9, 9.9, -29.9)) = 1",
        False,
        3,
    ),
    (
        "polygon-contains-point-box",
        f"SELECT obs_publisher_did FROM {OBS} WHERE CONTAINS(POINT(s_ra, s_dec), "
        f"BOX('ICRS', 10.0, -30.0, 0.1, 0.1)) = 1",
        False,
        4,
    ),
    (
        "circle-in-polygon",
        f"SELECT obs_publisher_did FROM {OBS} WHERE CONTAINS(CIRCLE(s_ra, s_dec, 0.001), "
        f"POLYGON(9.9, -30.1, 10.1, -30.1, 10.1, -29.9, 9.9, -29.9)) = 1",
        False,
        4,
    ),
    (
        "geometry-values",
        f"SELECT TOP 2 POINT('ICRS', s_ra, s_dec) AS p, CIRCLE('ICRS', s_ra, s_dec, s_fov) AS c, "
        f"POLYGON('ICRS', 1, 2, 3, 4, 5, 6) AS poly, COORD1(POINT(s_ra, s_dec)) AS ra, "
        f"COORD2(POINT(s_ra, s_dec)) AS dec, COORDSYS(POINT(s_ra, s_dec)) AS frame, "
        f"AREA(CIRCLE(0, 0, 1)) AS a, AREA(POLYGON(0, 0, 1, 0, 1, 1, 0, 1)) AS a2, "
        f"CENTROID(CIRCLE(s_ra, s_dec, 1)) AS centre FROM {OBS} ORDER BY s_ra",
        True,
        2,
    ),
    (
        "geometry-through-subquery",
        f"SELECT t.obs_publisher_did, COORD1(t.p), t.p FROM (SELECT obs_publisher_did, "
        f"POINT(s_ra, s_dec) AS p FROM {OBS}) AS t WHERE CONTAINS(t.p, "
        f"CIRCLE(10, -30, 0.05)) = 1",
        False,
        4,
    ),
    (
        "upload-join",
        "SELECT u.name, o.target_name FROM TAP_UPLOAD.targets AS u JOIN ivoa.obscore AS o "
        "ON o.obs_publisher_did = u.did ORDER BY u.name",
        True,
        3,
    ),
    (
        "upload-similarity-join",
        "SELECT u.name, n.neighbour_did FROM TAP_UPLOAD.targets AS u "
        "JOIN similarity.neighbour AS n ON n.obs_publisher_did = u.did "
        "ORDER BY u.name, n.rank",
        True,
        None,
    ),
    (
        "tap-schema",
        "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'similarity' "
        "ORDER BY table_name",
        True,
        5,
    ),
    (
        "model-timestamp",
        "SELECT model_name, trained_at FROM similarity.model "
        "WHERE trained_at < '2024-01-02T03:04:06'",
        False,
        1,
    ),
]
