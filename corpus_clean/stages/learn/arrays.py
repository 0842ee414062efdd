"""Array helpers the fit is made of: keys, recurrence counts, orders and groups."""

from __future__ import annotations

import numpy as np

#: No cluster key: pads a row of keys (it sorts last).
NO_KEY = np.uint64(2**64 - 1)


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: uniform 64-bit keys from any 64-bit values (never NO_KEY)."""
    x = values.astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return np.minimum(x, NO_KEY - np.uint64(1))


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per record, the smallest record joined to it by the pairs (``a[i]``, ``b[i]``):
    independent of the pairs' order. In rounds over all the pairs whose ends still
    differ: the larger of their two roots is hooked under the smaller, then every
    record points to its root."""
    parent = np.arange(n, dtype=np.int64)
    while len(a):
        low, high = np.minimum(parent[a], parent[b]), np.maximum(parent[a], parent[b])
        np.minimum.at(parent, high, low)
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
        apart = parent[a] != parent[b]
        a, b = a[apart], b[apart]
    return parent


def once_per_record(
    key: np.ndarray, record: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (key, record) occurrences sorted by key then record, each pair once (a line
    twice in one record counts once), and where each stands in the arrays given (records
    in order, as sketches list them).

    As ``np.lexsort((record, key))`` but several times as fast: one sort (of values, not
    an argsort) of a code of the key's high bits and the position, which follows the
    record. Keys that share those bits (a few pairs in a run of a million articles) are
    put in order apart."""
    bits = np.uint64(max(1, (len(key) - 1).bit_length()))
    # In place where it can be: with a million articles' sentences, every array of them
    # held at once is another 100 MB at the fit's peak.
    code = key >> bits
    code <<= bits
    code |= np.arange(len(key), dtype=np.uint64)
    code.sort()
    at = (code & ((np.uint64(1) << bits) - np.uint64(1))).view(np.int64)
    key, record = key[at], record[at]
    code >>= bits  # the high bits
    mixed = (code[1:] == code[:-1]) & (key[1:] != key[:-1])
    if mixed.any():
        # The runs of those high bits (found in the sorted code, not by a pass over all).
        shared = np.unique(code[1:][mixed])
        ends = np.searchsorted(code, shared, side="right")
        starts = np.searchsorted(code, shared, side="left")
        which = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        # High bits follow the key, so sorting all such runs at once keeps each in place.
        again = which[np.lexsort((record[which], key[which]))]
        at[which], key[which], record[which] = at[again], key[again], record[again]
    del code
    first = np.ones(len(at), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    first[1:] |= record[1:] != record[:-1]
    at = at[first]
    key = key[first]
    return key, record[first], at


def group_sizes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """For each position, how many positions hold the same (first, second) pair."""
    if not len(first):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((second, first))
    new = np.ones(len(order), dtype=bool)
    new[1:] = (first[order][1:] != first[order][:-1]) | (second[order][1:] != second[order][:-1])
    group = np.cumsum(new) - 1
    sizes = np.bincount(group)
    out = np.empty(len(order), dtype=np.int64)
    out[order] = sizes[group]
    return out


def recurrence(
    site: np.ndarray,
    key: np.ndarray,
    cluster: np.ndarray,
    ranks: tuple[np.ndarray, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (site, key) pairs, sorted, with the number of distinct clusters holding
    each, and the pair of each occurrence (in the order given). ``ranks``: the keys'
    ``_ranks``, where the caller has them already."""
    order = _lexsorted(site, key, cluster, ranks)
    site, key, cluster = site[order], key[order], cluster[order]
    new_pair = np.ones(len(site), dtype=bool)
    new_pair[1:] = (site[1:] != site[:-1]) | (key[1:] != key[:-1])
    new_triple = new_pair.copy()
    new_triple[1:] |= cluster[1:] != cluster[:-1]
    pair_of = np.cumsum(new_pair) - 1
    where = np.empty(len(order), dtype=np.int64)
    where[order] = pair_of
    return site[new_pair], key[new_pair], np.bincount(pair_of[new_triple]), where


def renumbered(names: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Each of the sites ``other``: its number among ``names`` (sorted), or -1."""
    if not len(names):
        return np.full(len(other), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(names, other), len(names) - 1)
    return np.where(names[at] == other, at, -1).astype(np.int64)


def site_numbers(sites: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct sites, sorted, and each record's number among them, as
    ``np.unique(..., return_inverse=True)`` gives them in six times the time (0.058 s
    against 0.009 s for 100,000 records): a set and a dict, no sort of every string."""
    names = sorted(set(sites))
    number = {name: n for n, name in enumerate(names)}
    ids = np.fromiter((number[site] for site in sites), dtype=np.int64, count=len(sites))
    return np.array(names, dtype=str), ids


def _ranks(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Each key's rank among the distinct keys, and how many distinct keys there are."""
    keys, rank = np.unique(key, return_inverse=True)
    return rank, len(keys)


def _lexsorted(
    site: np.ndarray,
    key: np.ndarray,
    cluster: np.ndarray,
    ranks: tuple[np.ndarray, int] | None = None,
) -> np.ndarray:
    """An order that sorts by site, key, then cluster (non-negative site and cluster
    numbers), as ``np.lexsort((cluster, key, site))`` but for the order among equal
    triples (which no caller sees): one sort of a code made of the three (the key as its
    ``_ranks``) where it fits in 63 bits, four times as fast."""
    if not len(key):
        return np.zeros(0, dtype=np.int64)
    key_of, distinct = ranks if ranks is not None else _ranks(key)
    sites, clusters = int(site.max()) + 1, int(cluster.max()) + 1
    if sites * distinct * clusters >= 2**63:
        return np.lexsort((cluster, key, site))
    code = (site.astype(np.int64) * distinct + key_of) * clusters + cluster.astype(np.int64)
    return np.argsort(code)


def distinct_per_pair(pair: np.ndarray, values: np.ndarray, n_pairs: int) -> np.ndarray:
    """How many distinct values each pair number holds among the occurrences given."""
    if not len(pair):
        return np.zeros(n_pairs, dtype=np.int64)
    values = values.astype(np.int64)
    width = int(values.max()) + 1
    # Sorted, then each run once (np.unique hashes int64s, several times slower here).
    both = np.sort(pair.astype(np.int64) * width + values)
    first = np.ones(len(both), dtype=bool)
    first[1:] = both[1:] != both[:-1]
    return np.bincount(both[first] // width, minlength=n_pairs)


def max_per_pair(pair: np.ndarray, values: np.ndarray, n_pairs: int) -> np.ndarray:
    out = np.zeros(n_pairs, dtype=np.int64)
    np.maximum.at(out, pair, values.astype(np.int64))
    return out
