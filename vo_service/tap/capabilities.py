"""What the TAP capability declares besides limits and formats (TAPRegExt 1.0, section 2).

Every feature listed here is exercised by a query in
``tests/tap/test_capabilities.py`` on both backends: a feature the
translator does not really support must not be declared. One ADQL 2.1 key is
left out on purpose even though COALESCE works: Debian's STILTS 3.4.7 does
not know ``features-adql-conditional`` and reports declaring it as an error
(docs/validators.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.adql.similarity_udf import FUNCTIONS as SIMILARITY_FUNCTIONS

__all__ = [
    "ADQL_VERSIONS",
    "DATA_MODELS",
    "FEATURE_GROUPS",
    "DataModel",
    "FeatureGroup",
    "LanguageFeature",
]

ADQL_VERSIONS: tuple[str, ...] = ("2.0", "2.1")

_TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt#"


@dataclass(frozen=True)
class LanguageFeature:
    """One optional language feature (TAPRegExt 1.0 ``languageFeatures/feature``)."""

    form: str
    description: str | None = None


@dataclass(frozen=True)
class FeatureGroup:
    """The features of one type (``languageFeatures/@type``)."""

    type: str
    features: tuple[LanguageFeature, ...]


@dataclass(frozen=True)
class DataModel:
    """A data model some published table follows (``dataModel``)."""

    ivo_id: str
    name: str


def _group(key: str, *forms: str) -> FeatureGroup:
    return FeatureGroup(_TAPREGEXT + key, tuple(LanguageFeature(form) for form in forms))


FEATURE_GROUPS: tuple[FeatureGroup, ...] = (
    _group(
        "features-adqlgeo",
        "POINT",
        "CIRCLE",
        "BOX",
        "POLYGON",
        "CONTAINS",
        "INTERSECTS",
        "DISTANCE",
        "AREA",
        "CENTROID",
        "COORD1",
        "COORD2",
        "COORDSYS",
    ),
    _group("features-adql-string", "LOWER", "UPPER", "ILIKE"),
    _group("features-adql-sets", "UNION", "EXCEPT", "INTERSECT"),
    _group("features-adql-common-table", "WITH"),
    _group("features-adql-type", "CAST"),
    _group("features-adql-offset", "OFFSET"),
    FeatureGroup(
        _TAPREGEXT + "features-udf",
        tuple(LanguageFeature(form, text) for form, text in SIMILARITY_FUNCTIONS.values()),
    ),
)

DATA_MODELS: tuple[DataModel, ...] = (
    DataModel("ivo://ivoa.net/std/ObsCore#core-1.1", "ObsCore-1.1"),
)
