"""The pages' catalogue queries on both backends: public images with a vector, nothing else."""

from __future__ import annotations

from tap_schema import Settings, open_catalogue
from tests.tap import catalogue as small
from vo_service.pages.browse import find_by_target, public_images, sample_images


def small_catalogue(settings: Settings):
    catalogue = open_catalogue(settings)
    small.fill(catalogue)
    return catalogue


def test_samples_are_public_images_with_a_vector_one_per_target(any_settings: Settings) -> None:
    catalogue = small_catalogue(any_settings)
    try:
        samples = sample_images(catalogue, per_kind=6)
        assert set(samples) == {"continuum", "peak_flux"}
        for kind, cards in samples.items():
            assert cards
            assert all(card.image_kind == kind for card in cards)
            assert all(card.obs_publisher_did in small.PUBLIC for card in cards)
            targets = [card.target_name for card in cards]
            assert len(targets) == len(set(targets))
        # brightest first: the small catalogue's S/N grows with the image number
        continuum = [card.obs_publisher_did for card in samples["continuum"]]
        assert continuum == [small.did(5), small.did(3)]
    finally:
        catalogue.dispose()


def test_an_image_without_a_current_vector_is_not_offered(any_settings: Settings) -> None:
    catalogue = small_catalogue(any_settings)
    try:
        model = catalogue.table("similarity.model")
        with catalogue.begin() as conn:
            conn.execute(model.update().where(model.c.model_id == 2).values(is_current=0))
        assert sample_images(catalogue)["peak_flux"] == []
        assert small.did(2) not in public_images(catalogue, [small.did(2)])
        assert small.did(1) in public_images(catalogue, [small.did(1)])
    finally:
        catalogue.dispose()


def test_target_search_ignores_case_and_hides_proprietary_images(any_settings: Settings) -> None:
    catalogue = small_catalogue(any_settings)
    try:
        found = [card.obs_publisher_did for card in find_by_target(catalogue, "spt2145")]
        assert found == [small.did(5), small.did(6)]  # 7 and 8 are proprietary
        assert len(find_by_target(catalogue, "h212")) == 4
        assert find_by_target(catalogue, "%") == []
        assert find_by_target(catalogue, "_") == []
        assert len(find_by_target(catalogue, "2", limit=3)) == 3
    finally:
        catalogue.dispose()


def test_public_images_answers_only_for_public_identifiers(any_settings: Settings) -> None:
    catalogue = small_catalogue(any_settings)
    try:
        asked = [small.did(1), small.did(7), small.did(8), "ivo://nowhere/x?y"]
        cards = public_images(catalogue, asked)
        assert list(cards) == [small.did(1)]
        card = cards[small.did(1)]
        assert card.target_name == "HH212"
        assert card.product_key == "image-001"  # the name of its preview and file
        obscore = catalogue.table("ivoa.obscore")
        with catalogue.begin() as conn:
            conn.execute(
                obscore.update()
                .where(obscore.c.obs_publisher_did == small.did(1))
                .values(obs_release_date=small.FUTURE)
            )
        assert public_images(catalogue, [small.did(1)]) == {}
    finally:
        catalogue.dispose()
