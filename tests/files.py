"""Small file helpers shared by tests: zips in memory, CSVs read back as dicts."""
import csv
import io
import zipfile


def make_zip(members: dict) -> bytes:
    """A zip archive holding {name: bytes or str}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def read_rows(path) -> list[dict]:
    """The rows of a CSV file as dicts keyed by its header."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
