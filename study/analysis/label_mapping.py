"""Map a model's class distribution onto a study's label set by name (pure Python; no torch).

A model may order its classes differently from the study, lack some of the study's labels, or have extra
ones (AffectNet's Contempt on a RAF-DB study). Missing study labels make the model unusable for the study
unless the researcher allows it: then they get probability 0 and are listed (`missing`). Extra model
labels are dropped and the rest renormalised, and the dropped probability mass is recorded.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ml.labels import canonical_label


@dataclass(frozen=True)
class LabelMapping:
    """For each study label, the model column that feeds it; `dropped` are model columns with no study label."""

    study_labels: tuple[str, ...]
    columns: tuple[int | None, ...]
    dropped: tuple[int, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        """Study labels the model has no class for (they always get probability 0)."""
        return tuple(label for label, c in zip(self.study_labels, self.columns, strict=True) if c is None)

    def apply(self, probabilities: Sequence[float]) -> tuple[list[float], float]:
        """Model-order probabilities -> (study-order distribution summing to 1, dropped mass)."""
        kept = [max(float(probabilities[c]), 0.0) if c is not None else 0.0 for c in self.columns]
        dropped_mass = float(sum(max(float(probabilities[c]), 0.0) for c in self.dropped))
        total = sum(kept)
        if total <= 0:  # the model put all its mass on dropped classes: fall back to uniform over its labels
            shared = [c is not None for c in self.columns]
            return [1.0 / sum(shared) if s else 0.0 for s in shared], dropped_mass
        return [p / total for p in kept], dropped_mass


class LabelMismatch(ValueError):
    """The model lacks labels the study needs."""

    def __init__(self, missing: Sequence[str]):
        self.missing = list(missing)
        super().__init__(f"the model has no class for the study label(s): {', '.join(self.missing)}")


def label_mapping_build(*, model_classes: Sequence[str], study_labels: Sequence[str],
                        allow_missing: bool = False) -> LabelMapping:
    """Match names case-insensitively through ml.labels' aliases (Happy == Happiness).

    allow_missing: study labels the model lacks get probability 0 instead of refusing the model (it still
    needs at least two labels in common)."""
    position = {canonical_label(name): i for i, name in enumerate(model_classes)}
    missing = [label for label in study_labels if canonical_label(label) not in position]
    if missing and (not allow_missing or len(study_labels) - len(missing) < 2):
        raise LabelMismatch(missing)
    columns = tuple(position.get(canonical_label(label)) for label in study_labels)
    dropped = tuple(i for i in range(len(model_classes)) if i not in {c for c in columns if c is not None})
    return LabelMapping(study_labels=tuple(study_labels), columns=columns, dropped=dropped)


def missing_study_labels(*, model_classes: Sequence[str], study_labels: Sequence[str]) -> tuple[str, ...]:
    """Study labels the model has no class for, matched as label_mapping_build matches them, in study order.

    A model registered without class names (none in practice: registration reads them) lacks nothing that
    can be named, so it gets ()."""
    if not model_classes:
        return ()
    have = {canonical_label(name) for name in model_classes}
    return tuple(label for label in study_labels if canonical_label(label) not in have)


def normalised_entropy(distribution: Sequence[float]) -> float:
    """Shannon entropy divided by log(C): 0 for one certain label, 1 for uniform."""
    n = len(distribution)
    if n < 2:
        return 0.0
    entropy = -sum(p * math.log(p) for p in distribution if p > 0)
    return float(min(max(entropy / math.log(n), 0.0), 1.0))
