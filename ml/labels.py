"""Emotion label sets and matching class names across datasets (pure Python, no torch).

A model trained with one class order serves a study or dataset with another: classes are matched by
canonical name, never by position.
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RAFDB_BASIC7", "AFFECTNET8", "AFFECTNET7", "ALIASES", "canonical_label", "map_indices"]

RAFDB_BASIC7: list[str] = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
AFFECTNET8: list[str] = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
AFFECTNET7: list[str] = AFFECTNET8[:7]

ALIASES: dict[str, str] = {
    "happy": "Happiness", "happiness": "Happiness", "joy": "Happiness",
    "sad": "Sadness", "sadness": "Sadness",
    "surprise": "Surprise", "surprised": "Surprise",
    "angry": "Anger", "anger": "Anger",
    "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear", "afraid": "Fear",
    "neutral": "Neutral", "contempt": "Contempt",
}


def canonical_label(name: str) -> str:
    """'happy', 'Happy ', 'HAPPINESS' -> 'Happiness'. Unknown names come back stripped, first letter upper."""
    cleaned = str(name).strip()
    return ALIASES.get(cleaned.lower(), cleaned[:1].upper() + cleaned[1:])


def map_indices(source: Sequence[str], target: Sequence[str]) -> list[int | None]:
    """For each source class, its index in `target` by canonical name, or None if target lacks it."""
    position = {canonical_label(name): i for i, name in enumerate(target)}
    return [position.get(canonical_label(name)) for name in source]
