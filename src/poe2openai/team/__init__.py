"""Running poe2openai for a team: proxy keys, per-key limits, the low-balance guard,
Prometheus metrics, the usage log, and the readiness probe.

Every face (Chat Completions, Responses, Messages) reaches these through one object,
:class:`poe2openai.team.gate.Team` (``app[TEAM]``), so none of them is wired twice.
"""
