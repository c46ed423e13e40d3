"""The scores of an evaluation: one row per way of making vectors, and their table.

Written by the evaluation stage (`model_training.evaluate.stage`) and read
by its plots, the CLI and tuning; kept apart from the stage so that the
plots need not import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from model_training.learn.morphology import MorphologyScores
from model_training.learn.retrieval import RetrievalScores

__all__ = ["Evaluation", "MethodScores"]


@dataclass(frozen=True)
class MethodScores:
    """Scores of one way of turning cut-outs into vectors."""

    name: str
    role: str
    scores: RetrievalScores
    self_retrieval_at_10: float
    any_orientation: RetrievalScores
    morphology: MorphologyScores | None = None


@dataclass(frozen=True)
class Evaluation:
    """The evaluation of one model on the images of one kind."""

    image_kind: str
    model_id: int | None
    n_images: int
    n_sources: int
    labels: str
    rows: list[MethodScores] = field(default_factory=list)

    @property
    def model(self) -> MethodScores:
        """The row of the model as it is served."""
        return next(row for row in self.rows if row.role == "model")

    @property
    def best_baseline(self) -> MethodScores | None:
        """The baseline with the highest mean average precision (None without baselines)."""
        baselines = [row for row in self.rows if row.role == "baseline"]
        return max(baselines, key=lambda row: row.scores.mean_average_precision, default=None)

    def table(self) -> str:
        """Format the scores as a fixed-width text table, model first."""
        header = (
            f"{'':34} {'R@1':>6} {'R@10':>6} {'R@100':>6} {'mAP':>6} "
            f"{'1st rank':>8} {'class P@10':>10} {'self@10':>7} {'mAP any orient.':>15}"
        )
        lines = [
            f"same-source retrieval, {self.image_kind} images: {self.n_images} images of "
            f"{self.n_sources} sources ({self.labels}), "
            f"{self.model.scores.n_queries} queries",
            header,
            "-" * len(header),
        ]
        for row in self.rows:
            s = row.scores
            precision = "" if s.class_precision_at_10 is None else f"{s.class_precision_at_10:.3f}"
            lines.append(
                f"{row.name:34.34} {s.recall_at_1:6.3f} {s.recall_at_10:6.3f} "
                f"{s.recall_at_100:6.3f} {s.mean_average_precision:6.3f} "
                f"{s.median_first_rank:8.1f} {precision:>10} {row.self_retrieval_at_10:7.3f} "
                f"{row.any_orientation.mean_average_precision:15.3f}"
            )
        best = self.best_baseline
        if best is None:
            return "\n".join(lines)
        ratio = self.model.scores.mean_average_precision / best.scores.mean_average_precision
        lines.append(
            f"model mAP is {ratio:.2f} x the best baseline's ({best.name}); "
            f"median first rank {self.model.scores.median_first_rank:.0f} vs "
            f"{best.scores.median_first_rank:.0f}"
        )
        return "\n".join(lines)

    def morphology_table(self) -> str:
        """Format the morphology scores (empty without morphology classes), model first."""
        if any(row.morphology is None for row in self.rows):
            return ""
        n_high = self.rows[0].morphology.classes.n_high_snr
        header = (
            f"{'':34} {'cls P@10':>8} {'cls mAP':>7} {'hiSN P@10':>9} {'hiSN mAP':>8} "
            f"{'rot R@10':>8} {'rot cos':>7} {'zoom R@10':>9} {'zoom cos':>8} "
            f"{'src mAP':>7} {'score':>6}"
        )
        lines = [
            f"morphology, {self.image_kind} images: {self.n_images} images, "
            f"{n_high} of peak S/N >= 20",
            header,
            "-" * len(header),
        ]
        for row in self.rows:
            c, r, z = row.morphology.classes, row.morphology.rotated, row.morphology.zoomed
            lines.append(
                f"{row.name:34.34} {c.precision_at_10:8.3f} {c.mean_average_precision:7.3f} "
                f"{c.high_snr_precision_at_10:9.3f} {c.high_snr_map:8.3f} "
                f"{r.recall_at_10:8.3f} {r.mean_cosine:7.3f} {z.recall_at_10:9.3f} "
                f"{z.mean_cosine:8.3f} {row.scores.mean_average_precision:7.3f} "
                f"{row.morphology.score:6.3f}"
            )
        lines.append("")
        names = sorted(self.rows[0].morphology.classes.per_class)
        lines.append(f"{'class P@10 / mAP per class':34} " + " ".join(f"{n:>13.13}" for n in names))
        for row in self.rows:
            cells = " ".join(
                "{:6.3f}/{:6.3f}".format(*row.morphology.classes.per_class[n]) for n in names
            )
            lines.append(f"{row.name:34.34} {cells}")
        baselines = [row for row in self.rows if row.role == "baseline"]
        if baselines:
            best = max(baselines, key=lambda row: row.morphology.score)
            lines.append(
                f"model morphology score {self.model.morphology.score:.3f} against "
                f"{best.morphology.score:.3f} for the best baseline ({best.name.strip()})"
            )
        return "\n".join(lines)

    def to_json(self) -> dict:
        """Return the evaluation as plain data (``vosim evaluate --json``)."""
        result = asdict(self)
        for row in result["rows"]:
            del row["scores"]["recall_curve"], row["any_orientation"]["recall_curve"]
        return result
