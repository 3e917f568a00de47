"""State shared by several instances through Redis (``REDIS_URL``).

Without ``REDIS_URL`` none of these objects is made (and the ``redis`` library is not even
imported): every instance keeps its state in memory (and the upload cache in SQLite), as
it always did. With it:

* :mod:`.link`: the one Redis client of a process, a short timeout on every call, and
  what happens when Redis is away (:class:`~.link.SharedStateDown`, a warning, a metric);
* :mod:`.limits`: the per-key rpm, concurrency and daily limits, :mod:`.spacing`:
  ``RATE_LIMIT_MS``, both as atomic Lua scripts;
* :mod:`.responses`: stored Responses; :mod:`.uploads`: the upload cache;
* :mod:`.wiring`: puts them in the app in place of the in-process ones.

Nothing in Redis holds a secret: API keys and owners are SHA-256 hashes.
"""
