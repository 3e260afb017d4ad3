"""Whole-slide images: reading (``reader``), tissue masks (``mask``), tiling (``tiling``),
stain normalisation (``stain``, ``macenko``), tile reads (``pipeline``), slide lists
(``manifest``, ``patients``), and the ``slides`` data set (``dataset``) that composes them
with the extraction engine of ``histobench.benchmark`` (``embed``).

Import from the modules themselves; this package exports nothing.
"""
