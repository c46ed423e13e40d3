"""What a training run says about itself: its true speed, and its thread count."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_training.learn.train import EpochRecord, TrainingOutcome, views_per_second


def _record(epoch: int, seconds: float, steps: int = 18, batch: int = 64) -> EpochRecord:
    return EpochRecord(epoch, 1.0, seconds, 2 * batch * steps / seconds)


def test_the_closing_line_gives_the_whole_runs_speed_not_the_last_epochs() -> None:
    # The reported run: 59 slow epochs (three trainings at once), the last alone;
    # 2,126 s for 1080 steps of 64 images are 65 views/s, not the last epoch's 1252.
    history = [_record(epoch, 36.0) for epoch in range(1, 60)] + [_record(60, 1.84)]
    seconds = sum(r.seconds for r in history)
    assert history[-1].views_per_second == pytest.approx(1252, abs=1)
    assert views_per_second(history) == pytest.approx(2 * 64 * 18 * 60 / seconds)
    line = str(TrainingOutcome({}, Path("run"), history, threads="1 thread (--threads)"))
    assert line.startswith(
        f"trained 60 epochs in {seconds:.0f} s at 65 views/s on 1 thread (--threads)"
    )
    assert views_per_second([]) == 0.0
