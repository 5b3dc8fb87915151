"""CSV reading shared by the dataset loaders and the figure CLIs (no torch, so light CLIs stay light)."""
import csv

__all__ = ["stripped_dict_reader"]


def stripped_dict_reader(handle) -> tuple[csv.DictReader, list[str]]:
    """A csv.DictReader over an open CSV whose header names are stripped of spaces, and that header."""
    reader = csv.DictReader(handle)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    return reader, header
