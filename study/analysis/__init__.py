"""Pure numbers on numpy/scipy, no Django: metrics (agreement, divergences, ceilings) and label mapping.

An import-linter contract (pyproject.toml) keeps Django out, so everything here is testable and usable
from a notebook on plain arrays.
"""
