"""The similarity service: rank every public image against a combination of selected images.

The paper's page (Stoehr et al. 2024, "Interface") shows the images most
similar to one image and re-ranks them "to the combination of all selected
images" at each click. There, the combination only re-ordered the union of
the selected images' precomputed lists of 1000; here every public image of
the same kind and a compatible category is ranked, so an image that was in
none of those lists still comes up when the combination makes it similar.
This module does it without HTTP (the handlers parse and answer):

1. The selected (``ID``) and excluded (``NOT_ID``) images must exist, be
   public (`vo_service.product_lookup`) and have a vector of the current model of
   their kind; all must be of one image kind, since the two kinds have
   separate models and vectors.
2. Their vectors are combined (`ranking.query_vector`).
3. The candidates are the public images of that kind whose category is
   compatible with the category of the *first* selected image, other than
   the selected and excluded ones. The first image is the one the search
   started from (the page's ``/similar?ID=``), and the images a user then
   selects come from its list, so this keeps the candidate set fixed while
   the user refines: each click re-orders the same images, as in the paper.
   (Requiring compatibility with every selected image instead would shrink
   the list at each click; the compatibility relation is not transitive.)
4. With ``MIN_SEPARATION``, the candidates whose cut-out centre lies closer
   than that to a selected image's are left out (`separation`): repeated
   observations of the selected field would otherwise fill the top of the
   ranking, while a user wants other objects that look alike. How many were
   left out is part of the answer.
5. They are ranked (`index.KindIndex.rank`), and a page of ``MAXREC`` rows
   from ``OFFSET`` on is returned, with the metadata of each image read
   from the catalogue at that moment; an image whose catalogue row is no
   longer public (its release date moved) is dropped and the index reloaded.

The index is loaded at start-up and reloaded when the catalogue's
fingerprint (current models, vector counts, ingests, category table)
changes; release dates are compared with the request's instant, so images
become public while the server runs.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from threadpoolctl import ThreadpoolController

from tap_schema import Catalogue
from tap_schema.config import environment_overrides
from tap_schema.release import utc_now
from vo_service.adql.similarity_scores import KindScores
from vo_service.product_lookup import Product, ProductArchive, not_found_message

from .embedder import Embedder
from .errors import NotFoundError, ParameterError, UnavailableError, UploadError
from .image_upload import UploadedImage
from .index import IndexOptions, KindIndex, allowed_categories
from .ranking import EmptyQueryError, query_vector
from .separation import ARCSEC_PER_DEGREE, unit_vectors
from .storage import CurrentModel, VectorStorage

__all__ = [
    "QUICK_SELECT_DEPTH",
    "QuickSelectGroup",
    "RankedImage",
    "SimilarityLimits",
    "SimilarityQuery",
    "SimilarityResult",
    "SimilarityService",
]

log = logging.getLogger(__name__)

QUICK_SELECT_DEPTH = 1000
"""The quick-select row clusters this many of the best-ranked images (the paper's top 1000)."""


@dataclass(frozen=True)
class SimilarityLimits:
    """Limits of the similarity service, overridable as ``VOSIM_SIMILARITY_<FIELD>``.

    Parameters
    ----------
    default_maxrec
        Rows returned when the request gives no MAXREC.
    hard_maxrec
        Rows never exceeded in one response; page further with OFFSET.
    max_selected
        Most images that may be selected and excluded in one request.
    refresh_interval_s
        How often the catalogue's fingerprint is checked for changes.
    upload_limit_bytes
        Largest uploaded FITS file accepted.
    """

    default_maxrec: int = 100
    hard_maxrec: int = 1000
    max_selected: int = 200
    refresh_interval_s: float = 30.0
    upload_limit_bytes: int = 50_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimilarityLimits:
        """Read overrides from ``VOSIM_SIMILARITY_<FIELD>`` variables."""
        return replace(cls(), **environment_overrides(cls, "VOSIM_SIMILARITY_", environ))


@dataclass(frozen=True)
class SimilarityQuery:
    """A checked similarity request.

    Parameters
    ----------
    selection
        Publisher DIDs of the selected images, the first one the search's start.
    excluded
        Publisher DIDs of the images to rank away from ("less like these").
    maxrec
        Rows to return.
    offset
        Rows to skip (paging).
    quick_select
        Also cluster the top 1000 for the page's quick-select row.
    min_separation_arcsec
        Leave out the candidates closer than this (arcsec) to a selected
        image's cut-out centre; 0 leaves none out.
    """

    selection: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    maxrec: int = 100
    offset: int = 0
    quick_select: bool = False
    min_separation_arcsec: float = 0.0


@dataclass(frozen=True)
class RankedImage:
    """One row of a ranking."""

    rank: int
    product: Product
    similarity: float


@dataclass(frozen=True)
class QuickSelectGroup:
    """One entry of the quick-select row: a cluster's representative and what it preselects."""

    representative: str
    members: tuple[str, ...]
    """The images closest to the representative among the top 1000, itself first."""


@dataclass(frozen=True)
class SimilarityResult:
    """A page of a ranking and what it was ranked against."""

    selection: tuple[str, ...]
    excluded: tuple[str, ...]
    image_kind: str
    model_id: int
    total: int
    """Number of candidates ranked."""
    results: tuple[RankedImage, ...]
    overflow: bool
    """More ranked images follow this page."""
    uploaded: UploadedImage | None = None
    """The uploaded image ranked against, if the search was by upload."""
    uploaded_vector: np.ndarray | None = None
    """The uploaded image's vector (current model), for ``vosim_similarity_vector`` in ADQL."""
    quick_select: tuple[QuickSelectGroup, ...] | None = None
    """The quick-select row, when asked for."""
    min_separation_arcsec: float = 0.0
    """The MIN_SEPARATION the candidates were held to (0: none)."""
    hidden_nearby: int = 0
    """Candidates left out because they lie within MIN_SEPARATION of a selected image."""


class SimilarityService:
    """Ranks images against selections; holds the in-memory index of every kind.

    Parameters
    ----------
    catalogue
        The open catalogue.
    limits
        Row, selection and upload limits.
    options
        How the indexes rank (exact scan or reduced copy with re-ranking).
    embedder
        Computes the vector of an uploaded image's cut-out with the current model.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        limits: SimilarityLimits | None = None,
        options: IndexOptions | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.limits = limits or SimilarityLimits.from_env()
        self.options = options or IndexOptions()
        self.embedder = embedder
        self.archive = ProductArchive(catalogue)
        self.storage = VectorStorage(catalogue)
        self._indexes: dict[str, KindIndex] = {}
        self._compatibility: dict[str, frozenset[str]] = {}
        self._fingerprint: tuple[tuple, tuple | None] | None = None
        self._load_lock = threading.Lock()

    @property
    def indexes(self) -> Mapping[str, KindIndex]:
        """The index of each image kind that has a current model."""
        return self._indexes

    def refresh(self, *, force: bool = False) -> bool:
        """Reload what changed in the catalogue since the last load; return whether anything did.

        New models or vectors reload the vectors (and rebuild the reduced
        copies); a change of products or categories only re-reads each
        image's category and release date. New indexes are built aside and
        swapped in whole, so requests running meanwhile keep ranking against
        the previous ones.
        """
        with self._load_lock:
            vectors_seen, metadata_seen = self._fingerprint or (None, None)
            vectors_now, metadata_now = self.storage.fingerprint()
            if force or vectors_now != vectors_seen:
                indexes = self._load_vectors()
            elif metadata_now != metadata_seen:
                indexes = self._reload_metadata()
            else:
                return False
            self._indexes, self._compatibility = indexes, self.storage.compatibility()
            self._fingerprint = (vectors_now, metadata_now)
        return True

    def _load_vectors(self) -> dict[str, KindIndex]:
        indexes = {}
        for model in self.storage.current_models():
            loaded = self.storage.kind_vectors(model)
            if not loaded.dids:
                continue
            index = KindIndex(
                model.image_kind,
                model.model_id,
                loaded.dids,
                loaded.vectors,
                loaded.categories,
                loaded.release_dates,
                self.options,
                loaded.cutout_centres,
            )
            log.info(
                "similarity index of %s: model %d, %d vectors of d=%d, %s",
                model.image_kind,
                model.model_id,
                len(index),
                index.vectors.shape[1],
                "exact scan"
                if index.reduced is None
                else f"two-stage, recall {index.measured_recall:.4f} at load",
            )
            indexes[model.image_kind] = index
        return indexes

    def _reload_metadata(self) -> dict[str, KindIndex]:
        indexes = {}
        for kind, index in self._indexes.items():
            model = CurrentModel(kind, index.model_id)
            metadata = self.storage.kind_metadata(model, list(index.dids))
            indexes[kind] = index.with_metadata(
                metadata.categories, metadata.release_dates, metadata.cutout_centres
            )
        return indexes

    def similarity_scores(
        self, did: str | None, vector: np.ndarray | None, now: datetime, best: int | None = None
    ) -> list[KindScores]:
        """Score every image against ``did`` (its kind's) or ``vector`` (each kind of its length).

        For ADQL's ``vosim_similarity`` with a constant argument
        (`vo_service.adql.similarity_scores`): the scores of images not public
        at ``now`` are NaN, and an image ``did`` that is not public, unknown
        or without a vector gives no scores at all, as a DID that does not exist.
        With ``best`` (an ADQL ranking's first cut), an index with a quantised
        copy scores exactly only the images that may be among the ``best``
        best (`_best_kind_scores`); the others come from `KindScores.complete`.
        """
        indexes = list(self._indexes.values())  # one snapshot: reloads swap the dict whole
        if did is not None:
            for index in indexes:
                position = index.positions.get(did)
                if position is not None:
                    public = index.public_mask(now)
                    if not public[position]:
                        return []
                    return [_kind_scores(index, index.vectors[position], public, best)]
            return []
        if vector is None:
            return []
        return [
            _kind_scores(index, vector.astype(np.float32), index.public_mask(now), best)
            for index in indexes
            if index.vectors.shape[1] == vector.size
        ]

    def image(self, did: str, now: datetime | None = None) -> Product:
        """Return a public image by DID (the page's tile of a selected image).

        Raises
        ------
        NotFoundError
            When no public image has this DID.
        """
        return self._public_products([did], now or utc_now())[did]

    def search(self, query: SimilarityQuery, now: datetime | None = None) -> SimilarityResult:
        """Rank the candidates against the query's selection and return one page.

        Raises
        ------
        ParameterError
            For an empty or contradictory selection, or images of two kinds.
        NotFoundError
            For an image that is unknown, not public, or has no vector.
        UnavailableError
            When the selection's kind has no current model.
        """
        now = now or utc_now()
        selection, excluded = self._check_selection(query, uploaded=False)
        products = self._public_products([*selection, *excluded], now)
        kind = self._one_kind(products, selection, excluded)
        index = self._index(kind)
        public = index.public_mask(now)
        selected = self._positions(index, public, selection)
        first_category = products[selection[0]].scientific_category
        return self._ranked(
            index,
            index.vectors[selected],
            selected,
            self._positions(index, public, excluded),
            allowed_categories(self._compatibility, first_category),
            replace(query, selection=selection, excluded=excluded),
            now,
            nearby=self._nearby(index, selected, query),
        )

    def search_by_image(
        self, image: UploadedImage, query: SimilarityQuery, now: datetime | None = None
    ) -> SimilarityResult:
        """Rank the candidates against an uploaded image, with ``query``'s further selections.

        The image is embedded with the current model of its kind and is the
        search's start, as the first selected image is for `search`: its
        category is unknown, so every category may be listed (as for an
        archive image without one). Images in ``query.selection`` refine the
        ranking as further selected images do (the page uploads the file
        again with each click), ``query.excluded`` pull it away, and
        ``MIN_SEPARATION`` is measured from the uploaded cut-out's centre too.

        Raises
        ------
        ParameterError, NotFoundError
            For selected and excluded images as in `search`, or of another kind.
        UnavailableError
            When the image's kind has no current model, or no embedder is set up.
        """
        now = now or utc_now()
        selection, excluded = self._check_selection(query, uploaded=True)
        products = self._public_products([*selection, *excluded], now)
        for did in (*selection, *excluded):
            if products[did].image_kind != image.image_kind:
                role = "ID" if did in selection else "NOT_ID"
                raise ParameterError(
                    f"the uploaded image is a {image.image_kind} map but {role} {did!r} is "
                    f"{products[did].image_kind}; images are only compared within one kind"
                )
        index = self._index(image.image_kind)
        if self.embedder is None:
            raise UnavailableError("this service is not set up to embed uploaded images")
        try:
            model_id, vector = self.embedder.embed(image.image_kind, image.cutout.pixels)
        except LookupError as error:  # the model's row or weights file went missing
            raise UnavailableError(str(error)) from error
        if not np.isfinite(vector).all():
            raise UploadError(
                "the uploaded image's cut-out has no finite vector (its pixels are NaN or"
                " infinite where the cut-out is taken); upload a map with finite values there"
            )
        if model_id != index.model_id:
            self._fingerprint = None  # the current model changed: reload everything
            raise UnavailableError(
                f"the {image.image_kind} model changed while the service was reloading; "
                "try again in a minute"
            )
        public = index.public_mask(now)
        selected = self._positions(index, public, selection)
        centre = unit_vectors(image.cutout.ra, image.cutout.dec)
        result = self._ranked(
            index,
            np.concatenate([vector[np.newaxis, :], index.vectors[selected]]),
            selected,
            self._positions(index, public, excluded),
            None,
            replace(query, selection=selection, excluded=excluded),
            now,
            nearby=self._nearby(index, selected, query, centre),
        )
        return replace(result, uploaded=image, uploaded_vector=np.asarray(vector, np.float32))

    @staticmethod
    def _nearby(
        index: KindIndex,
        selected: np.ndarray,
        query: SimilarityQuery,
        uploaded_centre: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Mark the images within the query's MIN_SEPARATION of a selected one (None: no limit)."""
        if query.min_separation_arcsec <= 0.0:
            return None
        return index.near(
            selected, query.min_separation_arcsec / ARCSEC_PER_DEGREE, uploaded_centre
        )

    def _forget_metadata(self) -> None:
        """Make the next `refresh` re-read categories and release dates."""
        if self._fingerprint is not None:
            self._fingerprint = (self._fingerprint[0], None)

    def _index(self, kind: str) -> KindIndex:
        index = self._indexes.get(kind)
        if index is None:
            raise UnavailableError(
                f"there are no similarity vectors of {kind} images yet: the archive has to "
                f"train (vosim train) and embed (vosim embed) a model for {kind} images first"
            )
        return index

    def _ranked(
        self,
        index: KindIndex,
        selected_vectors: np.ndarray,
        selected: np.ndarray,
        avoided: np.ndarray,
        allowed: frozenset[str] | None,
        query: SimilarityQuery,
        now: datetime,
        *,
        nearby: np.ndarray | None = None,
    ) -> SimilarityResult:
        """Rank the eligible images of ``index`` and return the query's page of them.

        ``nearby`` marks the images left out for lying near a selected one;
        only eligible ones are counted, so the count says nothing of images
        that are not public.
        """
        try:
            vector = query_vector(selected_vectors, index.vectors[avoided])
        except EmptyQueryError as error:
            raise ParameterError(str(error)) from error
        eligible = index.public_mask(now) & index.compatible_mask(allowed)
        eligible[selected] = False
        eligible[avoided] = False
        hidden = 0
        if nearby is not None:
            hidden = int(np.count_nonzero(eligible & nearby))
            eligible &= ~nearby
        depth = query.offset + query.maxrec
        if query.quick_select:
            depth = max(depth, QUICK_SELECT_DEPTH)
        ranking = index.rank(vector, eligible, depth)
        page = slice(query.offset, query.offset + query.maxrec)
        rows = self._rows(
            [index.dids[p] for p in ranking.positions[page]],
            ranking.scores[page],
            query.offset,
            now,
        )
        return SimilarityResult(
            selection=query.selection,
            excluded=query.excluded,
            image_kind=index.image_kind,
            model_id=index.model_id,
            total=ranking.total,
            results=tuple(rows),
            overflow=ranking.total > query.offset + query.maxrec,
            quick_select=_quick_select(index, ranking.positions) if query.quick_select else None,
            min_separation_arcsec=query.min_separation_arcsec,
            hidden_nearby=hidden,
        )

    def _check_selection(
        self, query: SimilarityQuery, *, uploaded: bool
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        selection = tuple(dict.fromkeys(query.selection))
        excluded = tuple(dict.fromkeys(query.excluded))
        if not uploaded and not selection:
            raise ParameterError(
                "give the identifier (obs_publisher_did) of at least one selected image as ID, "
                "or upload a FITS image as IMAGE"
            )
        both = [did for did in excluded if did in selection]
        if both:
            raise ParameterError(
                f"{both[0]!r} is given both as ID and as NOT_ID; an image is either selected "
                "or excluded"
            )
        if len(selection) + len(excluded) > self.limits.max_selected:
            raise ParameterError(
                f"{len(selection) + len(excluded)} images are selected or excluded; this service "
                f"combines at most {self.limits.max_selected}"
            )
        return selection, excluded

    def _public_products(self, dids: Sequence[str], now: datetime) -> dict[str, Product]:
        found = self.archive.find(dids)
        for did in dids:
            product = found.get(did)
            if product is None or not product.is_public(now):
                raise NotFoundError(not_found_message(did))
        return found

    @staticmethod
    def _one_kind(
        products: Mapping[str, Product], selection: Sequence[str], excluded: Sequence[str]
    ) -> str:
        kinds = {products[did].image_kind for did in (*selection, *excluded)}
        if None in kinds:
            did = next(d for d in (*selection, *excluded) if products[d].image_kind is None)
            raise NotFoundError(f"{did!r} is not an image with a similarity vector")
        if len(kinds) > 1:
            listed = ", ".join(f"{did!r} ({products[did].image_kind})" for did in selection)
            raise ParameterError(
                "the selected images must all be of one kind (continuum or peak_flux), since "
                f"each kind has its own model; got {listed}"
                + (
                    " and excluded "
                    + ", ".join(f"{did!r} ({products[did].image_kind})" for did in excluded)
                    if excluded
                    else ""
                )
            )
        return kinds.pop()  # type: ignore[return-value]

    @staticmethod
    def _positions(index: KindIndex, public: np.ndarray, dids: Sequence[str]) -> np.ndarray:
        positions = []
        for did in dids:
            position = index.positions.get(did)
            if position is None or not public[position]:
                raise NotFoundError(
                    f"the image {did!r} has no similarity vector of the current "
                    f"{index.image_kind} model (model {index.model_id}) yet; it gets one when "
                    "the archive next runs the embedding stage"
                )
            positions.append(position)
        return np.array(positions, dtype=np.int64)

    def _rows(
        self, dids: Sequence[str], scores: np.ndarray, offset: int, now: datetime
    ) -> list[RankedImage]:
        """Attach the catalogue rows to ranked images; drop any that stopped being public."""
        products = self.archive.find(dids)
        rows = []
        for did, score in zip(dids, scores, strict=True):
            product = products.get(did)
            if product is None or not product.is_public(now):
                log.warning("%s left the public set since the index was loaded; reloading", did)
                self._forget_metadata()
                continue
            rows.append(RankedImage(offset + len(rows) + 1, product, float(score)))
        return rows


def _kind_scores(
    index: KindIndex, query: np.ndarray, public: np.ndarray, best: int | None = None
) -> KindScores:
    if best is not None and index.quantized is not None and np.isfinite(query).all():
        return _best_kind_scores(index, query, public, best)
    scores = _full_scan(index.vectors, query).astype(np.float64)
    scores[~public] = np.nan
    return KindScores(index.image_kind, index.model_id, index.dids, index.positions, scores)


def _best_kind_scores(
    index: KindIndex, query: np.ndarray, public: np.ndarray, best: int
) -> KindScores:
    """Score exactly only the public images whose bound reaches the ``best``-th best.

    `quantized.QuantizedVectors.best_candidates`: every public image scoring
    at least the ``best``-th best exact score is among them, ties included,
    and `_candidate_scores` scores exactly those that can still reach it.
    Their scores are the exact scan's (`_scan_scores`); `complete`
    gives every image's, with these same values where they were computed,
    so that later cuts agree with the first.
    """
    assert index.quantized is not None
    query = np.ascontiguousarray(query, dtype=np.float32)
    found = index.quantized.candidate_bounds(query, public, best)
    candidates, exact = _candidate_scores(index.vectors, query, best, *found)
    scores = np.full(len(index), np.nan)
    scores[candidates] = exact

    def complete() -> np.ndarray:
        every = _full_scan(index.vectors, query).astype(np.float64)
        every[candidates] = exact
        every[~public] = np.nan
        return every

    return KindScores(
        index.image_kind, index.model_id, index.dids, index.positions, scores, complete
    )


def _candidate_scores(
    vectors: np.ndarray,
    query: np.ndarray,
    best: int,
    candidates: np.ndarray,
    approximate: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Score exactly the ``best`` candidates of best approximate score, then their rivals.

    The lowest exact score ``m`` of the first ``best`` is at most the
    ``best``-th best exact score ``t`` (``best`` images score at least ``m``),
    so a candidate whose upper bound is below ``m`` scores below ``t`` and is
    left out: every image scoring at least ``t`` is still scored, ties
    included. Return the positions scored, in index order, and their scores.
    """
    with _one_blas_thread():
        return _first_and_rivals(vectors, query, best, candidates, approximate, upper)


def _first_and_rivals(
    vectors: np.ndarray,
    query: np.ndarray,
    best: int,
    candidates: np.ndarray,
    approximate: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    if candidates.size <= best:
        return candidates, _scan_scores(vectors, candidates, query)
    order = np.argsort(-approximate, kind="stable")
    first = np.sort(candidates[order[:best]])
    first_scores = _scan_scores(vectors, first, query)
    others = order[best:]
    rivals = np.sort(candidates[others[upper[others] >= first_scores.min()]])
    positions = np.concatenate([first, rivals])
    scores = np.concatenate([first_scores, _scan_scores(vectors, rivals, query)])
    in_order = np.argsort(positions, kind="stable")
    return positions[in_order], scores[in_order]


_ONE_THREAD = threading.Lock()
"""Held while BLAS runs on one thread, so that each request restores the count it found."""


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run BLAS on one thread meanwhile: for the products of a few thousand gathered rows.

    Those take well under a millisecond on one core; with BLAS's threads,
    right after the compiled first pass whose own threads still hold the
    cores, they waited several milliseconds for them (benchmarks/README.md).
    The count is the process's: another request's product started
    meanwhile runs on one thread too.
    """
    with _ONE_THREAD, _blas().limit(limits=1, user_api="blas"):
        yield


def _full_scan(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``vectors @ query``, with the last ``n % 4`` rows scored as `_scan_scores` scores them.

    How a BLAS kernel rounds the rows beyond the last group of four differs
    between CPU kernels; scoring them by the same call in both places keeps
    the candidates' scores the scan's to the bit on any of them.
    """
    out = vectors @ query
    tail = len(vectors) - len(vectors) % 4
    if tail < len(vectors):
        start, scores = _tail_scores(vectors, query)
        out[tail:] = scores[tail - start :]
    return out


def _tail_scores(vectors: np.ndarray, query: np.ndarray) -> tuple[int, np.ndarray]:
    """Score the rows from ``start`` on: the last ``n % 4`` and the four before them.

    One call over them in both `_full_scan` and `_scan_scores` (one row
    alone would be a dot product, rounded otherwise).
    """
    start = max(len(vectors) - len(vectors) % 4 - 4, 0)
    return start, vectors[start:] @ query


def _scan_scores(vectors: np.ndarray, positions: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``(vectors @ query)[positions]``, float32, as the full scan rounds them.

    OpenBLAS's gemv scores rows four at a time, and the last ``n % 4`` rows
    of a matrix by another kernel, in another order of additions: the
    gathered rows are padded to a multiple of four, and those among the
    last ``n % 4`` are scored with them, so that each score is the scan's to
    the bit (single-threaded BLAS; with threads, the scan's own rounding
    depends on how the rows are split, and these agree with it to float32
    rounding). A ranking then orders near-equal scores as the scan does.
    """
    tail = len(vectors) - len(vectors) % 4
    out = np.empty(positions.size, dtype=np.float32)
    body = positions < tail
    rows = positions[body]
    if rows.size:
        padded = np.concatenate([rows, np.repeat(rows[:1], -rows.size % 4)])
        out[body] = (vectors[padded] @ query)[: rows.size]
    if not body.all():
        start, scores = _tail_scores(vectors, query)
        out[~body] = scores[positions[~body] - start]
    return out


def _quick_select(index: KindIndex, ranked: np.ndarray) -> tuple[QuickSelectGroup, ...]:
    """Cluster the top 1000 of a ranking into the quick-select row (the paper's "Interface").

    k-means in five groups; each group's representative is its member
    closest to the centroid, and preselects the 15 images closest to it
    (`model_training.neighbours.quick_select`, also used for the precomputed lists).
    The ranking here is the refined one, so the row follows the selection.
    """
    from model_training.neighbours.quick_select import quick_select

    top = ranked[:QUICK_SELECT_DEPTH]
    chosen = quick_select(index.vectors[top])
    return tuple(
        QuickSelectGroup(
            representative=index.dids[top[representative]],
            members=tuple(index.dids[top[member]] for member in members),
        )
        for representative, members in zip(chosen.representatives, chosen.preselected, strict=True)
    )
