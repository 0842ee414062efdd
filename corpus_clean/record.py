"""The one record type that flows through every stage, and its JSON-object form.

This is the only module that knows the output schema: which keys are ours, in which
order they are written, and how unknown input fields are carried along untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any

#: Keys the record owns; every other key of an input object is kept in ``meta``.
OWN_KEYS = ("id", "title", "text", "source", "date")
#: Own keys that corpus-clean fills in when the input has none.
ADDED_KEYS = ("title", "source", "date")


#: One removal as ``--explain`` reports it: ("line" or "tail", the text removed, the rule).
Removal = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Record:
    """An article (or a raw page that still has to be split) and everything known about it."""

    id: str
    text: str
    source: str
    title: str | None = None
    date: str | None = None
    #: Input fields that are not ours, in input order: never dropped.
    meta: dict[str, Any] = field(default_factory=dict)
    #: True for a raw page read from a ``.txt`` file: the split stage turns it into articles.
    is_page: bool = False
    #: With ``--explain``: what cleaning removed, ("line" or "tail", text, rule) in order;
    #: every cleaning stage appends to it. Never written out.
    removed: list[Removal] | None = field(default=None, compare=False, repr=False)
    #: Which of ``ADDED_KEYS`` the input object itself had at its top level: the others,
    #: when set, are corpus-clean's (a page's have none). Says how the record is
    #: written, not what it is: not compared.
    given: tuple[str, ...] = field(default=(), compare=False)

    def evolve(self, **changes: Any) -> Record:
        """A copy with some fields changed (records are immutable)."""
        return replace(self, **changes)

    def __reduce__(self) -> tuple[type[Record], tuple[Any, ...]]:
        # Pickled as its fields, rebuilt by __init__: a third faster both ways than the
        # default for a frozen dataclass with slots (the fit pass pickles every record).
        return (Record, record_fields(self))

    def to_dict(
        self, extra: dict[str, Any] | None = None, metadata_field: str | None = None
    ) -> dict[str, Any]:
        """The JSON object written for this record: own keys first, then preserved fields.

        ``extra`` appends stage annotations (such as ``duplicate_of``) after the rest. A
        title is written when known or when the input had the key (null). With
        ``metadata_field``, the fields corpus-clean added (and ``extra``) go into that
        object instead, merged into the input's own one if it has it.
        """
        ours: dict[str, Any] | None = {} if metadata_field is not None else None
        out: dict[str, Any] = {"id": self.id}
        if self.title is not None or "title" in self.given:
            self._put(out, ours, "title", self.title)
        out["text"] = self.text
        self._put(out, ours, "source", self.source)
        if self.date is not None:
            self._put(out, ours, "date", self.date)
        for key, value in self.meta.items():
            if key not in out:
                out[key] = value
        if ours is None:
            if extra:
                out.update(extra)
            return out
        assert metadata_field is not None
        ours.update(extra or {})
        if ours:
            out[metadata_field] = {**out.get(metadata_field, {}), **ours}
        return out

    def _put(self, out: dict[str, Any], ours: dict[str, Any] | None, key: str, value: Any) -> None:
        (out if ours is None or key in self.given else ours)[key] = value

    @classmethod
    def from_dict(
        cls,
        obj: dict[str, Any],
        *,
        default_id: str,
        source: str,
        text_field: str = "text",
        metadata_field: str | None = None,
    ) -> Record:
        """Build a record from an input JSON object.

        The text comes from ``text_field``; when that is not ``text``, an incoming ``text``
        key is kept in ``meta`` so nothing is lost. With ``metadata_field``, a ``title``,
        ``source`` or ``date`` missing at the top level is read from that object (where
        an earlier run with it put them). Raises ``ValueError`` with a message that says
        what is wrong and how to fix it.
        """
        text = obj.get(text_field)
        if not isinstance(text, str):
            found = ", ".join(sorted(obj)) or "none"
            raise ValueError(
                f"no string field {text_field!r} (fields: {found}); "
                "use --text-field to name the field that holds the text"
            )
        if text_field != "text" and "text" in obj:
            raise ValueError(
                f"has both 'text' and {text_field!r}; the output writes the text as 'text', "
                "so rename one of them first (for example with jq)"
            )
        given = tuple(key for key in ADDED_KEYS if key in obj)
        meta = {k: v for k, v in obj.items() if k not in OWN_KEYS and k != text_field}
        if metadata_field is not None and metadata_field in obj:
            inner = obj[metadata_field]
            if not isinstance(inner, dict):
                raise ValueError(
                    f"field {metadata_field!r} must be an object, for --metadata-field"
                )
            obj = {**{k: inner[k] for k in ADDED_KEYS if k in inner}, **obj}
        for key in ("title", "date"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise ValueError(f"field {key!r} must be a string or null")
        return cls(
            id=_name(obj, "id", default_id),
            text=text,
            source=_name(obj, "source", source),
            title=obj.get("title"),
            date=obj.get("date"),
            meta=meta,
            given=given,
        )


#: A record's fields in ``__init__``'s order (``Record(*fields)`` rebuilds it), as
#: ``Record.__reduce__`` pickles them.
record_fields: Callable[[Record], tuple[Any, ...]] = attrgetter(*(f.name for f in fields(Record)))


def _name(obj: dict[str, Any], key: str, default: str) -> str:
    """A string field that names something (``id``, ``source``): an integer is kept as
    its JSON spelling; null counts as absent. Anything else would have no spelling that
    other tools share (Python's ``True``, ``1.5`` for ``1.50``), so it is refused."""
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if type(value) is int:  # not bool, which is an int to Python
        return str(value)
    raise ValueError(f"field {key!r} must be a string or an integer")
