"""Datasets. Submodules import torch only where they need it."""
