"""Batches: many images submitted at once, classified on the bulk lane, read back as a table.

- ``record``: the stored batch (``batches/<id>.json``) and its parts (``batches/<id>/<part>.json``,
  one per submission, each listing its items' request ids and names).
- ``archive``: the entries of a zip or tar archive, with limits (pure).
- ``submit``: storing items, queueing them on the bulk lane, writing a part.
- ``progress``: counts by state and the results table of a batch, with a per-process cache.
- ``export``: the results as CSV or JSON Lines (pure).
"""
