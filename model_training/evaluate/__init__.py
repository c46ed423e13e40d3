"""Evaluation of a trained model: same-source, class and invariance scores.

The stage is `stage.evaluate_model`; `tune` searches hyperparameters with
the same scores.
"""
