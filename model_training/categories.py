"""ALMA's five scientific categories, as proposals and the archive spell them.

Every ALMA proposal is filed under one of them; the similarity service lists
as similar only images of categories that publications use together (the
paper: no galactic disc beside a protoplanetary disc).
"""

COSMOLOGY = "Cosmology and the high-redshift universe"
GALAXIES = "Galaxies and galactic nuclei"
ISM = "ISM, star formation and astrochemistry"
DISKS = "Circumstellar disks, exoplanets and the solar system"
STELLAR = "Stellar evolution and the Sun"
SCIENTIFIC_CATEGORIES = (COSMOLOGY, GALAXIES, ISM, DISKS, STELLAR)
