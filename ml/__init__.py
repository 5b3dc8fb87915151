"""EmoStudy's machine-learning half: pure PyTorch ULDL/UAPL, never imports Django.

Kept import-light on purpose: `import ml` or `import ml.data.synthetic` must not pull in torch, so the
web process can draw synthetic faces without it.
"""
