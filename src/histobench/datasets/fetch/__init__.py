"""``bench data``: fetch, verify and lay out the study's public data sets.

- ``http``: one urllib3 pool with its ``Retry`` (exponential backoff on 5xx and dropped
  connections, bounded count) and configurable timeouts; JSON requests with one-line errors.
- ``download``: resumable (HTTP Range on a ``.part`` file), md5-verified, atomically renamed,
  bounded-parallel downloads with rich progress; a free-disk check before starting; a file
  whose checksum does not match is quarantined, never used.
- ``archive``: zip extraction that refuses traversal, absolute paths and links.
- ``zenodo``: NCT-CRC-HE-100K (and -NONORM) and CRC-VAL-HE-7K from Zenodo record 1214456.
- ``gdc``: TCGA-LUAD slides, masked somatic MAFs and STAR-counts from the GDC API, a slide
  manifest CSV and a ready ``luad.toml`` cohort file.
- ``cli``: the ``bench data list|fetch|verify`` command, added through ``histobench_commands``.

Nothing here runs unless the user asks for ``bench data``: no network at run time.
"""
