"""Baseline: the same job with rensa (Rust R-MinHash and its LSH index).

Same shingles as the datasketch script, one RMinHash(num_perm=128) per article fed the
whole list of 5-grams in one update() call, RMinHashLSH with 16 bands of 8 rows (rensa's
LSH takes the banding explicitly; 16x8 puts the S-curve knee near 0.7, so candidates are
then confirmed with the estimated Jaccard >= 0.8), query then insert, keep the first.
"""

from __future__ import annotations

from _common import NUM_PERM, THRESHOLD, parse_args, read_articles, word_ngrams, write_removed
from rensa import RMinHash, RMinHashLSH

NUM_BANDS = 16
SEED = 42


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=NUM_BANDS)
    kept: list[tuple[str, RMinHash]] = []
    removed: list[tuple[str, str | None]] = []
    for art_id, text in read_articles(args.articles):
        minhash = RMinHash(num_perm=NUM_PERM, seed=SEED)
        minhash.update(word_ngrams(text))
        match = next(
            (
                kept[key][0]
                for key in lsh.query(minhash)
                if kept[key][1].jaccard(minhash) >= THRESHOLD
            ),
            None,
        )
        if match is None:
            lsh.insert(len(kept), minhash)
            kept.append((art_id, minhash))
        else:
            removed.append((art_id, match))
    write_removed(args.removed, removed)


if __name__ == "__main__":
    main()
