"""The SynthMed repository: a web service where synthetic datasets are published, browsed and
downloaded (``synthmed serve``, ``synthmed publish``, ``synthmed token``).

``storage`` (files: folder or S3) and ``catalogue`` (SQL: SQLite or PostgreSQL) are the two
back ends; ``archive`` checks uploads; ``service`` keeps both back ends in step; ``app`` is the
FastAPI app, with its routes in ``api`` (JSON API of datasets), ``downloads`` (archives, files,
previews) and ``pages`` (HTML), and what they share in ``web``; ``client`` and ``commands`` are
the command line.
"""
