"""Reads that aggregate, by page or entity: participants.py (the participant flow), studies.py (researcher
dashboards), compare.py (the comparison view), access.py (who may see or change a study: the one access rule),
label_sets.py (which models serve which label set). Selectors never write."""
