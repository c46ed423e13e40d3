"""The four training verbs from the command line, on a toy archive: train, embed, evaluate, tune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tap_schema import Settings, open_catalogue
from tests.toy_archive import TINY_CONFIG, write_toy_archive
from vo_service.cli import main


@pytest.fixture
def toy_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Path, Path]:
    data = tmp_path / "data"
    monkeypatch.setenv("VOSIM_DATA_DIR", str(data))
    monkeypatch.delenv("VOSIM_DB_URL", raising=False)
    settings = Settings.from_env()
    truth = tmp_path / "truth.csv"
    write_toy_archive(
        settings, 8, 3, kinds=("continuum", "peak_flux"), proprietary=frozenset({1}), truth=truth
    )
    hyperparameters = tmp_path / "tiny.json"
    hyperparameters.write_text(json.dumps(TINY_CONFIG.replace(epochs=1).to_dict()))
    return settings, truth, hyperparameters


def test_train_embed_evaluate(toy_install, tmp_path: Path, capsys) -> None:
    settings, truth, hyperparameters = toy_install
    arguments = ["--hyperparameters", str(hyperparameters), "--truth", str(truth)]
    assert main(["train", *arguments, "--threads", "1"]) == 0
    output = capsys.readouterr()
    assert "train (1 thread)" in output.err  # the progress bar
    assert " views/s on 1 thread (--threads), final loss" in output.out
    catalogue = open_catalogue(settings)
    with catalogue.begin() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT model_id, image_kind, is_current, n_images, hyperparameters,"
                " mean_average_precision, class_precision_at_10, trained_on,"
                " includes_proprietary, morphology_score"
                " FROM similarity.model ORDER BY model_id"
            )
        ).all()
    # by default one network learns from both kinds' 46 public images; each kind gets its row
    assert [(r.image_kind, r.is_current, r.n_images, r.includes_proprietary) for r in rows] == [
        ("continuum", 1, 46, 0),
        ("peak_flux", 1, 46, 0),
    ]
    assert "trained on 46 images, public only" in output.out
    assert json.loads(rows[0].hyperparameters)["backbone"] == "resnet10"
    assert 0 < rows[0].mean_average_precision <= 1
    assert rows[0].class_precision_at_10 is not None
    assert 0 < rows[0].morphology_score <= 1

    assert main(["embed", "--threads", "2"]) == 0
    assert "(continuum, 2 threads)" in capsys.readouterr().err
    with catalogue.begin() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM similarity.embedding")).scalar()
    assert count == 2 * 23  # everything public, per kind
    capsys.readouterr()

    plots = tmp_path / "plots"
    code = main(["evaluate", "--truth", str(truth), "--json", "--plots", str(plots)])
    assert code == 0
    evaluations = json.loads(capsys.readouterr().out)
    assert [e["image_kind"] for e in evaluations] == ["continuum", "peak_flux"]
    names = [row["name"] for row in evaluations[0]["rows"]]
    assert names[0].startswith(f"model {rows[0].model_id}")
    assert any(name.startswith("raw pixels") for name in names)
    assert any(name.startswith("PCA") for name in names)
    assert "untrained network" in names
    assert "rotation-aligned pixels (D4)" in names
    assert "polar Fourier descriptor" in names
    morphology = evaluations[0]["rows"][0]["morphology"]
    assert set(morphology["classes"]["per_class"]) == {"point", "disc", "ring", "double"}
    assert 0 <= morphology["rotated"]["recall_at_10"] <= 1
    assert (plots / "neighbours-continuum.png").stat().st_size > 10_000
    assert (plots / "recall-peak_flux.png").stat().st_size > 10_000

    assert main(["evaluate", "--kind", "continuum"]) == 0
    assert "same-source retrieval, continuum images" in capsys.readouterr().out

    # A network file (as trained on another archive) scored on this one.
    (model_file,) = settings.model_dir.glob("*/model.pt")
    command = ["evaluate", "--model-file", str(model_file), "--truth", str(truth)]
    assert main([*command, "--kind", "peak_flux"]) == 0
    out = capsys.readouterr().out
    assert "morphology, peak_flux images" in out
    assert f"model {model_file.parent.name}"[:34] in out  # the table cuts names at 34


def test_include_proprietary_trains_on_every_image(toy_install, capsys) -> None:
    settings, _, hyperparameters = toy_install
    arguments = ["--hyperparameters", str(hyperparameters), "--kind", "continuum"]
    assert main(["train", *arguments, "--include-proprietary", "--no-current"]) == 0
    assert "trained on 24 images, 1 of them proprietary" in capsys.readouterr().out
    with open_catalogue(settings).begin() as conn:
        row = conn.execute(
            sa.text("SELECT n_images, includes_proprietary, is_current FROM similarity.model")
        ).one()
    assert tuple(row) == (24, 1, 0)


def test_resume_without_an_unfinished_run_is_a_usage_error(toy_install, capsys) -> None:
    assert main(["train", "--kind", "continuum", "--resume"]) == 2
    assert "no unfinished continuum run" in capsys.readouterr().err
    assert main(["evaluate"]) == 2


def test_tune_records_trials_and_the_best_hyperparameters(toy_install, capsys) -> None:
    settings, truth, hyperparameters = toy_install
    code = main(
        [
            "tune",
            "--hyperparameters",
            str(hyperparameters),
            "--trials",
            "2",
            "--epochs",
            "2",
            "--truth",
            str(truth),
            "--study",
            "t",
        ]
    )
    assert code == 0
    assert "study t: 2 trials complete" in capsys.readouterr().out
    best = json.loads((settings.model_dir / "tune-t" / "best-hyperparameters.json").read_text())
    assert best["backbone"] == "resnet10"
    summary = json.loads((settings.model_dir / "tune-t" / "study.json").read_text())
    assert len(summary["trials"]) == 2
    catalogue = open_catalogue(settings)
    with catalogue.begin() as conn:
        trials = conn.execute(
            sa.text("SELECT preset, is_current, scored_on FROM similarity.model")
        ).all()
    assert len(trials) == 2
    assert all(t.preset == "tune:cpu" and t.is_current == 0 for t in trials)
    assert trials[0].scored_on.startswith("held-out")
