"""Static files: a staticfiles finder for Plotly's bundle, taken from the installed plotly package, and the
storage used with DEBUG off (content-hashed names, gzip copies).

The 4.6 MB minified file is not committed: `{% static "vendor/plotly.min.js" %}` resolves to the copy
inside the plotly wheel. In development WhiteNoise serves it through the finders; `collectstatic`
copies (and compresses) it into STATIC_ROOT for production, where WhiteNoise serves it with the rest of
the static files. Either way the comparison page draws its charts offline, with no CDN.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage

PLOTLY_STATIC_PATH = "vendor/plotly.min.js"


def plotly_bundle() -> Path:
    """The minified Plotly bundle shipped inside the plotly Python package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return Path("plotly-is-not-installed") / "plotly.min.js"
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


class PlotlyFinder(BaseFinder):
    """Finds exactly one file, vendor/plotly.min.js, in the installed plotly package."""

    def __init__(self, *args, **kwargs):
        self.bundle = plotly_bundle()
        self.storage = FileSystemStorage(location=self.bundle.parent)
        self.storage.prefix = PLOTLY_STATIC_PATH.rsplit("/", 1)[0]  # collectstatic and WhiteNoise honour it

    def check(self, **kwargs):
        if not self.bundle.is_file():
            return [Error(f"Plotly's bundle is missing at {self.bundle}", hint="pip install plotly",
                          id="study.E001")]
        return []

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get("all", False)  # Django < 6.1 may still pass all=
        found = str(self.bundle) if path == PLOTLY_STATIC_PATH and self.bundle.is_file() else None
        if find_all:
            return [found] if found else []
        return found

    def list(self, ignore_patterns):
        if self.bundle.is_file():
            yield self.bundle.name, self.storage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """The DEBUG-off storage: collectstatic writes content-hashed copies (WhiteNoise serves them with a ten-year,
    immutable cache) and a gzip copy of each file. A name the manifest lacks (collectstatic not run yet, as in
    scripts and benchmarks that turn DEBUG off) keeps its plain URL instead of failing the whole page with a 500."""

    manifest_strict = False

    def stored_name(self, name):
        try:
            return super().stored_name(name)
        except ValueError:  # neither in the manifest nor in STATIC_ROOT
            return name
