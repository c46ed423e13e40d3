"""Where the catalogue says each image's cut-out is centred, as astropy positions.

The tests of ``MIN_SEPARATION`` compare the service's arithmetic with
astropy's separations of these (computed independently of the service).
"""

from __future__ import annotations

import sqlalchemy as sa
from astropy.coordinates import SkyCoord

from tap_schema import Catalogue

__all__ = ["cutout_centres"]


def cutout_centres(catalogue: Catalogue) -> dict[str, SkyCoord]:
    """The cut-out centre ingest stored for each image (``similarity.image``), by DID."""
    image = catalogue.table("similarity.image")
    with catalogue.begin() as conn:
        rows = conn.execute(
            sa.select(image.c.obs_publisher_did, image.c.cutout_ra, image.c.cutout_dec)
        ).all()
    return {did: SkyCoord(ra, dec, unit="deg") for did, ra, dec in rows}
