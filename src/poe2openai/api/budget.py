"""A budget of request-body bytes being received at once, over all requests."""

from __future__ import annotations

__all__ = ["BodyBudget", "Share"]

#: The budget is this many MAX_REQUEST_SIZEs ...
BUDGET_BODIES = 2
#: ... but never less than this, so many ordinary requests at once are never refused.
BUDGET_FLOOR = 256 * 1024 * 1024


class BodyBudget:
    """Bytes of request bodies received and not yet parsed.

    Room is taken as bytes arrive, so a slow sender holds only what it has really sent.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @classmethod
    def for_max_request_size(cls, max_request_size: int) -> BodyBudget:
        return cls(max(BUDGET_BODIES * max_request_size, BUDGET_FLOOR))

    def hold(self) -> Share:
        """A share of the budget, given back when its ``with`` block ends."""
        return Share(self)


class Share:
    """One request's part of the budget."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.size = 0

    def __enter__(self) -> Share:
        return self

    def __exit__(self, *exc: object) -> None:
        self.budget.used -= self.size
        self.size = 0

    def take(self, n: int) -> bool:
        """Add ``n`` bytes to this share; False (and nothing taken) when the budget is full."""
        budget = self.budget
        if budget.used + n > budget.limit:
            return False
        budget.used += n
        self.size += n
        return True
