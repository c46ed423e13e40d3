"""The scores of an evaluation: one row per way of making vectors, and their table.

Written by the evaluation stage (`model_training.evaluate.stage`) and read
by its plots, the CLI and tuning; kept apart from the stage so that the
plots need not import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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

    def to_json(self) -> dict:
        """Return the evaluation as plain data (``vosim evaluate --json``)."""
        result = asdict(self)
        for row in result["rows"]:
            del row["scores"]["recall_curve"], row["any_orientation"]["recall_curve"]
        return result
