"""Finding a case: by its number, a code found in it, its requester, its subject or
the text of its messages, best match first.

The database keeps the text indexed as rows are written (revision 0006): PostgreSQL a
GIN-indexed ``tsvector`` on ``tickets`` and ``messages``, SQLite an FTS5 table beside
each. A word search ranks only the newest :data:`CANDIDATES` cases that match (a common
word matches half the desk; ranking every one would take seconds at a million
messages); the case number and the codes are exact, and always come first.

The query is never handed to a search syntax: it is cut into words and codes here, so
quotes, operators and stars are just characters that match nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from consultant.codes.formats import dotted_icd10cm, is_cpt, is_hcpcs, is_icd10cm
from consultant.models import CodeLookup, Coder, Message, Ticket
from consultant.states import UNFINISHED

RESULTS_PER_PAGE = 20
CANDIDATES = 200  # per kind of match: the newest that match, ranked among themselves
RECENT_ROWS = 20_000  # a word search first looks among this many newest rows of a table
MAX_QUERY_CHARS = 200
FTS_TABLES = ("tickets_fts", "messages_fts")  # SQLite's, made by revision 0006

NUMBER_SCORE = 3.0  # the case named by its number
CODE_SCORE = 2.0  # a case in which every code asked for was found
# Word matches score in [0, 1): the rank r of the text, as r / (r + 1).

REFERENCE = re.compile(r"(#|CC-?)?\s*(\d{1,9})", re.IGNORECASE)
WORD = re.compile(r"[^\W_]+")
CODE_TOKEN = re.compile(r"[\s,;]+")
SNIPPET_CHARS = 200
SUFFIXES = ("ing", "ed", "es", "s")


class SearchQueryError(ValueError):
    """A query that cannot be searched (empty, too long): the message says why."""


@dataclass(frozen=True, slots=True)
class Query:
    """What a typed query asks for: a case number, codes, words (any of them)."""

    number: int | None
    codes: tuple[tuple[str, ...], ...]  # each code in the forms it may be stored in
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    ticket_id: int
    score: float
    matched: str  # "number", "code" or "text"
    message_id: int | None = None  # the message whose text matched best


@dataclass(frozen=True, slots=True)
class CaseResult:
    number: int
    subject: str
    requester: str
    requester_name: str
    status: str
    owner: str | None
    matched: str
    snippet: tuple[tuple[str, bool], ...]  # (text, highlighted)
    score: float

    @property
    def reference(self) -> str:
        return f"CC-{self.number}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "reference": self.reference,
            "subject": self.subject,
            "requester": self.requester,
            "requester_name": self.requester_name,
            "status": self.status,
            "owner": self.owner,
            "matched": self.matched,
            "snippet": "".join(part for part, _ in self.snippet),
            "highlighted": [part for part, marked in self.snippet if marked],
            "score": round(self.score, 6),
        }


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[CaseResult]
    next_after: str | None  # the cursor of the next page; None on the last


def parse_query(query: str) -> Query:
    """The number, codes and words of ``query``; :class:`SearchQueryError` when there
    is nothing to search for or too much."""
    typed = query.strip()
    if len(typed) > MAX_QUERY_CHARS:
        raise SearchQueryError(
            f"the search is {len(typed)} characters long; keep it under {MAX_QUERY_CHARS}"
        )
    reference = REFERENCE.fullmatch(typed)
    number = int(reference.group(2)) if reference else None
    if reference and reference.group(1):  # "#123", "CC-123": the case, nothing else
        return Query(number=number, codes=(), words=())
    tokens = [t for t in CODE_TOKEN.split(typed.upper()) if t]
    codes = [_code_forms(token) for token in tokens]
    words = tuple(WORD.findall(typed.lower()))
    if number is None and not words:
        raise SearchQueryError(
            "type a case number (CC-123), an address, a code or words to search for"
        )
    if not all(codes):
        return Query(number=number, codes=(), words=words)
    # Codes only ("99213", "J11.00 E11.9"): the cases they were found in. A short one
    # ("A1C") may as well be a word, and is looked for as one too.
    spelled = all(len(forms[0].replace(".", "")) >= 4 for forms in codes)
    return Query(number=number, codes=tuple(codes), words=() if spelled else words)


def _code_forms(token: str) -> tuple[str, ...]:
    """The forms a code is stored in (``J1100`` is kept as ``J11.00``); none when
    ``token`` is not shaped like a code. Modifiers written on (``99213-25``) are dropped."""
    bare = token.split("-", 1)[0]
    if is_cpt(bare) or is_hcpcs(bare):
        return (bare,)
    if is_icd10cm(bare):
        return tuple(dict.fromkeys((bare, dotted_icd10cm(bare))))
    return ()


def search_cases(
    session: Session,
    query: str,
    *,
    coder_id: int | None = None,
    after: str | None = None,
    limit: int = RESULTS_PER_PAGE,
) -> SearchPage:
    """Cases matching ``query``, best first, ``limit`` at a time after the cursor
    ``after``. With ``coder_id``, only the cases that coder's queue shows (their own and
    the unassigned unfinished ones); without, every case (leads, admins, the CLI)."""
    wanted = parse_query(query)
    hits: dict[int, Hit] = {}
    for hit in _matches(session, wanted, coder_id):
        if hit.ticket_id not in hits or hit.score > hits[hit.ticket_id].score:
            hits[hit.ticket_id] = hit
    ordered = sorted(hits.values(), key=lambda h: (-h.score, -h.ticket_id))
    start = _position_after(ordered, after)
    page = ordered[start : start + limit]
    more = start + limit < len(ordered)
    last = page[-1] if page else None
    return SearchPage(
        results=_results(session, page, wanted),
        next_after=f"{last.score!r}~{last.ticket_id}" if more and last else None,
    )


def _matches(session: Session, wanted: Query, coder_id: int | None) -> Iterable[Hit]:
    if wanted.number is not None:
        yield from _by_number(session, wanted.number, coder_id)
    if wanted.codes:
        yield from _by_codes(session, wanted.codes, coder_id)
    if wanted.words:
        if session.get_bind().dialect.name == "postgresql":
            yield from _by_words_postgres(session, wanted.words, coder_id)
        else:
            yield from _by_words_sqlite(session, wanted.words, coder_id)


def _position_after(ordered: Sequence[Hit], after: str | None) -> int:
    """Where the page after the cursor ``score~id`` starts; 0 for no or a bad cursor."""
    if not after:
        return 0
    score_text, _, number_text = after.partition("~")
    try:
        score, number = float(score_text), int(number_text)
    except ValueError:
        return 0
    for index, hit in enumerate(ordered):
        if (hit.score, hit.ticket_id) < (score, number):
            return index
    return len(ordered)


# --- who may see what ---------------------------------------------------------------


def _visible_to(coder_id: int | None) -> list[Any]:
    """The queue's rule: a coder's own cases and the unassigned unfinished ones."""
    if coder_id is None:
        return []
    return [
        or_(
            Ticket.coder_id == coder_id,
            and_(col(Ticket.coder_id).is_(None), col(Ticket.status).in_(UNFINISHED)),
        )
    ]


def _visible_sql(coder_id: int | None) -> str:
    """:func:`_visible_to` for the hand-written full-text queries (``t`` is tickets)."""
    if coder_id is None:
        return ""
    unfinished = ", ".join(f"'{status}'" for status in sorted(UNFINISHED))
    return f" AND (t.coder_id = :coder_id OR (t.coder_id IS NULL AND t.status IN ({unfinished})))"


# --- the three kinds of match -------------------------------------------------------


def _by_number(session: Session, number: int, coder_id: int | None) -> list[Hit]:
    query = select(Ticket.id).where(Ticket.id == number, *_visible_to(coder_id))
    return [Hit(ticket_id, NUMBER_SCORE, "number") for ticket_id in session.exec(query)]  # type: ignore[arg-type]


def _by_codes(
    session: Session, codes: tuple[tuple[str, ...], ...], coder_id: int | None
) -> list[Hit]:
    """The newest cases in which every code was found."""
    first, *others = codes
    query = (
        select(CodeLookup.ticket_id)
        .distinct()
        .join(Ticket, col(Ticket.id) == CodeLookup.ticket_id)
        .where(col(CodeLookup.code).in_(first), *_visible_to(coder_id))
        .order_by(col(CodeLookup.ticket_id).desc())
        .limit(CANDIDATES)
    )
    for forms in others:
        other = aliased(CodeLookup)
        query = query.where(
            exists().where(other.ticket_id == CodeLookup.ticket_id, col(other.code).in_(forms))
        )
    return [Hit(ticket_id, CODE_SCORE, "code") for ticket_id in session.exec(query)]


def _by_words_postgres(session: Session, words: tuple[str, ...], coder_id: int | None) -> list[Hit]:
    # Only letters and digits reach the query text, so quoting each word is enough. Whole
    # words (stemmed: "billed" finds "billing"), not beginnings: the planner estimates a
    # word's frequency from the column's statistics, a beginning's it cannot.
    params = {"query": " & ".join(f"'{word}'" for word in words), "coder_id": coder_id}
    # Planned for these words each time: a plan made once for any words (what a prepared
    # statement gets after five runs) cannot know whether they are rare or common.
    session.connection().execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    rows = [
        *_newest_matches(session, "tickets", params, coder_id),
        *_newest_matches(session, "messages", params, coder_id),
    ]
    return [
        Hit(ticket_id, float(score), "text", message_id) for ticket_id, message_id, score in rows
    ]


def _newest_matches(
    session: Session, table: str, params: dict[str, Any], coder_id: int | None
) -> list[Any]:
    """The newest :data:`CANDIDATES` rows of ``table`` matching the words.

    For a search of every case, two steps whose cost does not depend on how common the
    words are: first among the newest :data:`RECENT_ROWS` rows, walking the primary key
    (fast for a common word); then, if that found too few, through the full-text index
    alone, sorting what it finds (fast for a rare word, the only kind that gets there).
    One plan for both, chosen from a guess of the word's frequency, read whole tables
    for rare words and for words in no case at all."""
    scope = _visible_sql(coder_id)
    alias = "t" if table == "tickets" else "m"
    columns = "t.id, NULL" if table == "tickets" else "m.ticket_id, m.id"
    join = " JOIN tickets t ON t.id = m.ticket_id" if table == "messages" and scope else ""
    rank = f"ts_rank({alias}.search_vector, to_tsquery('english', :query), 32)"
    base = (
        f"SELECT {columns}, {rank} FROM {table} {alias}{join} "
        f"WHERE {alias}.search_vector @@ to_tsquery('english', :query){scope}"
    )
    if coder_id is not None:
        # A coder's queue holds a few cases in a hundred: among the newest rows its
        # matches are too thin for the first step to end the search, and the second then
        # reads every match of a common word. The planner, which knows the coder's share,
        # does better on one query (bench/README.md has both).
        query = f"{base} ORDER BY {alias}.id DESC LIMIT :limit"
        return [*session.connection().execute(text(query), {**params, "limit": CANDIDATES})]
    newest = session.connection().execute(text(f"SELECT max(id) FROM {table}")).scalar() or 0
    floor = newest - RECENT_ROWS
    recent = [
        *session.connection().execute(
            text(f"{base} AND {alias}.id > :floor ORDER BY {alias}.id DESC LIMIT :limit"),
            {**params, "floor": floor, "limit": CANDIDATES},
        )
    ]
    if len(recent) == CANDIDATES or floor <= 0:
        return recent
    # "id + 0" keeps the planner off the primary key: the index finds the rows.
    older = session.connection().execute(
        text(f"{base} AND {alias}.id <= :floor ORDER BY {alias}.id + 0 DESC LIMIT :limit"),
        {**params, "floor": floor, "limit": CANDIDATES - len(recent)},
    )
    return [*recent, *older]


def _by_words_sqlite(session: Session, words: tuple[str, ...], coder_id: int | None) -> list[Hit]:
    # Each word quoted: FTS5's operators and column filters are never read from a query.
    params = {
        "match": " ".join(f'"{word}"' for word in words),
        "limit": CANDIDATES,
        "coder_id": coder_id,
    }
    scope = _visible_sql(coder_id)
    tickets = (
        "SELECT tickets_fts.rowid, NULL, -bm25(tickets_fts, 10.0, 5.0, 5.0) FROM tickets_fts "
        f"JOIN tickets t ON t.id = tickets_fts.rowid WHERE tickets_fts MATCH :match{scope} "
        "ORDER BY tickets_fts.rowid DESC LIMIT :limit"
    )
    messages = (
        "SELECT m.ticket_id, m.id, -bm25(messages_fts) FROM messages_fts "
        "JOIN messages m ON m.id = messages_fts.rowid JOIN tickets t ON t.id = m.ticket_id "
        f"WHERE messages_fts MATCH :match{scope} ORDER BY messages_fts.rowid DESC LIMIT :limit"
    )
    rows = [*session.connection().execute(text(tickets), params)]
    rows += [*session.connection().execute(text(messages), params)]
    return [
        Hit(ticket_id, _bounded(max(float(score), 0.0)), "text", message_id)
        for ticket_id, message_id, score in rows
    ]


def _bounded(rank: float) -> float:
    return rank / (rank + 1.0)


# --- what a result shows ------------------------------------------------------------


def _results(session: Session, page: Sequence[Hit], wanted: Query) -> list[CaseResult]:
    if not page:
        return []
    ids = [hit.ticket_id for hit in page]
    rows = session.exec(
        select(Ticket, Coder.email)
        .join(Coder, col(Coder.id) == Ticket.coder_id, isouter=True)
        .where(col(Ticket.id).in_(ids))
    )
    tickets = {ticket.id: (ticket, owner) for ticket, owner in rows}
    bodies = _bodies(session, page)
    terms = [*wanted.words, *(form for forms in wanted.codes for form in forms)]
    results = []
    for hit in page:
        ticket, owner = tickets[hit.ticket_id]
        if hit.matched == "text" and hit.message_id is None:
            source = f"{ticket.subject} · {ticket.requester_name} <{ticket.requester}>"
        else:
            source = bodies.get(hit.ticket_id, ticket.subject)
        results.append(
            CaseResult(
                number=hit.ticket_id,
                subject=ticket.subject,
                requester=ticket.requester,
                requester_name=ticket.requester_name,
                status=ticket.status,
                owner=owner,
                matched=hit.matched,
                snippet=snippet(source, [] if hit.matched == "number" else terms),
                score=hit.score,
            )
        )
    return results


def _bodies(session: Session, page: Sequence[Hit]) -> dict[int, str]:
    """The text to quote for each case: the message that matched, else its first one."""
    wanted = [hit.message_id for hit in page if hit.message_id]
    others = [hit.ticket_id for hit in page if not hit.message_id]
    if others:
        first = (
            select(func.min(Message.id))
            .where(col(Message.ticket_id).in_(others))
            .group_by(col(Message.ticket_id))
        )
        wanted += [message_id for message_id in session.exec(first) if message_id]
    if not wanted:
        return {}
    query = select(Message.ticket_id, Message.body_text).where(col(Message.id).in_(wanted))
    return dict(session.exec(query).all())


def snippet(source: str, terms: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """About :data:`SNIPPET_CHARS` characters of ``source`` around the first term found,
    with every term (and the words it begins, so "bill" marks "billing") highlighted."""
    flat = " ".join(source.split())
    pattern = _terms_pattern(terms)
    found = pattern.search(flat) if pattern else None
    start = 0
    if found and found.start() > SNIPPET_CHARS // 3:
        start = flat.rfind(" ", 0, found.start() - SNIPPET_CHARS // 3) + 1
    end = start + SNIPPET_CHARS
    if end < len(flat):
        end = max(flat.rfind(" ", start, end), start + SNIPPET_CHARS // 2)
    window = ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
    if pattern is None:
        return ((window, False),)
    parts: list[tuple[str, bool]] = []
    position = 0
    for match in pattern.finditer(window):
        if match.start() > position:
            parts.append((window[position : match.start()], False))
        parts.append((match.group(0), True))
        position = match.end()
    if position < len(window):
        parts.append((window[position:], False))
    return tuple(parts)


def _terms_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    stems = sorted({_stem(term) for term in terms if term}, key=len, reverse=True)
    if not stems:
        return None
    return re.compile(r"\b(?:" + "|".join(map(re.escape, stems)) + r")\w*", re.IGNORECASE)


def _stem(word: str) -> str:
    """A word's beginning that its other forms share ("billing" and "billed": "bill")."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word
