"""Reads that aggregate, by page or entity: participants.py (the participant flow), studies.py (researcher
dashboards), compare.py (the comparison view). Selectors never write."""
