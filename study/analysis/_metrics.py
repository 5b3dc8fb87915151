"""One place that says where the base metrics live, so the analysis modules survive the move of
study/metrics.py into study/analysis/metrics.py (issue 9) with a one-line change."""
from study.metrics import *  # noqa: F401,F403
from study.metrics import SUMMARY_FIELDS, _batched_summary, _nanmean  # noqa: F401
