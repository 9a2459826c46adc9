"""The page size Meta accepts for one ad account, remembered across its pages and queries.

"Please reduce the amount of data" on a result page is a property of the query's shape,
not bad luck: the next page at the same size is refused the same way. So a size halved on
Meta's request stays halved for the rest of the query and the account's next queries, and
doubles back toward the configured size only after a run of clean pages. Refusals then cost
a few calls per query (the halvings), not a few per page.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_PAGE_SIZE = 25


@dataclass
class PageSize:
    limit: int  # what the next page asks for
    ceiling: int  # the configured page size: never asked above it
    grow_after: int  # clean pages in a row before the size doubles again
    clean: int = 0  # clean pages since the last refusal or growth

    def shrink(self) -> bool:
        """Halve after a refusal; False when already at MIN_PAGE_SIZE (nothing left to try)."""
        if self.limit <= MIN_PAGE_SIZE:
            return False
        self.limit, self.clean = max(MIN_PAGE_SIZE, self.limit // 2), 0
        return True

    def page_read(self) -> None:
        """A page came back at this size: after `grow_after` of them, try twice the size."""
        self.clean += 1
        if self.clean >= self.grow_after and self.limit < self.ceiling:
            self.limit, self.clean = min(self.ceiling, self.limit * 2), 0
