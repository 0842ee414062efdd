"""Baseline: the near-duplicate filter a typical datasketch user writes.

One MinHash(num_perm=128) per article, update() once per word 5-gram, a
MinHashLSH(threshold=0.8) index, query then insert, keep the first of each group.
Deliberately naive (no batching, no bulk hashing): it is the yardstick users start from.
"""

from __future__ import annotations

from _common import NUM_PERM, THRESHOLD, parse_args, read_articles, word_ngrams, write_removed
from datasketch import MinHash, MinHashLSH


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    removed: list[tuple[str, str | None]] = []
    for art_id, text in read_articles(args.articles):
        minhash = MinHash(num_perm=NUM_PERM)
        for gram in word_ngrams(text):
            minhash.update(gram.encode("utf-8"))
        hits = lsh.query(minhash)
        if hits:
            removed.append((art_id, hits[0]))
        else:
            lsh.insert(art_id, minhash)
    write_removed(args.removed, removed)


if __name__ == "__main__":
    main()
