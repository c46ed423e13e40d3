"""Rest frequencies of the spectral lines the demo archive's cubes observe.

Galactic sources and nearby galaxies are observed in molecular and atomic lines
at their rest frequencies (shifted by at most a few per cent); high-redshift
galaxies in CO ladders, [CI], water, [NII] and [CII], redshifted into ALMA's
bands.
"""

from collections.abc import Mapping

LOCAL_LINES: Mapping[str, float] = {
    "SiO(2-1)": 86.846960e9,
    "HCN(1-0)": 88.631602e9,
    "HCO+(1-0)": 89.188525e9,
    "N2H+(1-0)": 93.173764e9,
    "CS(2-1)": 97.980953e9,
    "CO(1-0)": 115.271202e9,
    "DCO+(2-1)": 144.077289e9,
    "H2CO(2-1)": 145.602949e9,
    "CS(3-2)": 146.969029e9,
    "HCN(2-1)": 177.261112e9,
    "HCO+(2-1)": 178.375056e9,
    "H2O(3-2)": 183.310087e9,
    "SiO(5-4)": 217.104980e9,
    "C18O(2-1)": 219.560354e9,
    "13CO(2-1)": 220.398684e9,
    "CO(2-1)": 230.538000e9,
    "CS(5-4)": 244.935557e9,
    "N2H+(3-2)": 279.511832e9,
    "CS(7-6)": 342.882850e9,
    "CO(3-2)": 345.795990e9,
    "HCN(4-3)": 354.505477e9,
    "HCO+(4-3)": 356.734223e9,
    "CO(4-3)": 461.040768e9,
    "[CI](1-0)": 492.160651e9,
    "CO(6-5)": 691.473076e9,
    "CO(7-6)": 806.651806e9,
    "[CI](2-1)": 809.341970e9,
    "HCN(10-9)": 885.970690e9,
}
"""Rest frequencies (Hz) of lines ALMA observes in the Galaxy and nearby galaxies."""

HIGH_REDSHIFT_LINES: Mapping[str, float] = {
    "CO(2-1)": 230.538000e9,
    "CO(3-2)": 345.795990e9,
    "CO(4-3)": 461.040768e9,
    "[CI](1-0)": 492.160651e9,
    "CO(5-4)": 576.267931e9,
    "CO(6-5)": 691.473076e9,
    "H2O(2_11-2_02)": 752.033143e9,
    "CO(7-6)": 806.651806e9,
    "[CI](2-1)": 809.341970e9,
    "CO(8-7)": 921.799700e9,
    "H2O(2_02-1_11)": 987.926759e9,
    "[NII]205": 1461.131406e9,
    "[CII]158": 1900.536900e9,
}
"""Rest frequencies (Hz) of the lines redshifted into ALMA's bands from z = 1 to 6."""
