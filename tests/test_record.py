"""The record type: what travels between processes and passes comes back whole."""

from __future__ import annotations

import pickle

from corpus_clean.record import Record


def test_a_pickled_record_comes_back_with_every_field() -> None:
    record = Record(
        id="a#1",
        text="Body.",
        source="site/a.txt",
        title="A",
        date="2024-01-02",
        meta={"url": "https://example.com/a", "n": [1, 2]},
        is_page=True,
        removed=[("line", "Home", "learned_line")],
        given=("title",),
    )
    back = pickle.loads(pickle.dumps(record, protocol=5))
    # removed and given are not compared: checked one by one.
    assert back == record
    assert (back.removed, back.given, back.is_page) == (record.removed, record.given, True)
