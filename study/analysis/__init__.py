"""Pure numbers on numpy/scipy, no Django: metrics (agreement, divergences, ceilings), label mapping,
fair ceilings, the LDL metric set, aggregation and vote allocation.

An import-linter contract (pyproject.toml) keeps Django out, so everything here is testable and usable
from a notebook on plain arrays.
"""
