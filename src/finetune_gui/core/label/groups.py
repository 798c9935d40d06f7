"""Groups of similar pictures for naming classes: k-means on the features.

Naming a group ("these are cats") is quicker than finding the first cats one by one. Groups are
only proposals: the user names, merges or dismisses them, and a named group labels only its
members nearest the centre (`MEMBERS_SHOWN`), the ones the user saw; the rest are proposed by
the head those labels teach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finetune_gui.core.errors import UserError
from finetune_gui.core.label.asking import unit_rows

MEMBERS_SHOWN = 8
MAX_GROUPS = 50


@dataclass(frozen=True)
class PictureGroup:
    """One cluster: its rows nearest the centre first, and how many rows it has."""

    number: int
    members: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.members)

    def shown(self, count: int = MEMBERS_SHOWN) -> tuple[int, ...]:
        return self.members[:count]


def propose_groups(features: np.ndarray, k: int, *, seed: int = 0) -> list[PictureGroup]:
    """`k` groups of the rows of `features`, largest first (cosine k-means: features scaled to
    length 1, as the asking order measures them)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    n = len(features)
    if not 2 <= k <= MAX_GROUPS:
        raise UserError(f"The number of groups must be from 2 to {MAX_GROUPS}; got {k}.")
    if k > n:
        raise UserError(f"There are only {n} pictures, fewer than the {k} groups asked for.")
    unit = unit_rows(features)
    # Two threads at most: the machine is shared with the window (and the user's other work).
    with threadpool_limits(limits=2):
        found = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(unit)
    distance = np.linalg.norm(unit - found.cluster_centers_[found.labels_], axis=1)
    groups = []
    for cluster in range(k):
        rows = np.flatnonzero(found.labels_ == cluster)
        rows = rows[np.lexsort((rows, distance[rows]))]
        groups.append(tuple(int(r) for r in rows))
    groups.sort(key=lambda members: (-len(members), members[0] if members else 0))
    return [PictureGroup(number, members) for number, members in enumerate(groups, start=1)]
