"""``consultant codes``: load and import code files, extract codes from text, search.

Loads and imports read the whole file first and stop at its first bad line (naming it),
so a malformed file loads nothing; the writing then happens in one transaction, with a
progress bar when a person is watching the terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.codes.formats import CPT, HCPCS, ICD10CM
from consultant.codes.records import CodeRecord, FileFormatError
from consultant.db import session_scope

app = typer.Typer(
    help="Medical code catalog: load, import, extract, search; the specialties cases go to.",
    no_args_is_help=True,
)
import_app = typer.Typer(help="Import a code file you supply.", no_args_is_help=True)
app.add_typer(import_app, name="import")

ReleaseOption = Annotated[
    str | None, typer.Option("--release", help="Release name to record (default: from the file).")
]
FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
SYSTEMS = (ICD10CM, HCPCS, CPT)


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; silence when output goes to a file or a pipe."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def _report(report: Any, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        typer.echo(report.summary())


def _read(path: Path, parse: Callable[[bytes], Sequence[Any]]) -> Sequence[Any]:
    try:
        return parse(path.read_bytes())
    except FileFormatError as exc:
        fail(f"{path}: {exc} (nothing was loaded)")


def _release(given: str | None, path: Path) -> str:
    from consultant.codes.releases import release_from_file_name

    return given or release_from_file_name(path.name)


@app.command("load")
def load(
    system: Annotated[str, typer.Argument(help="Only icd10cm ships with the desk.")],
    as_json: JsonOption = False,
) -> None:
    """Load a bundled code system into the database (ICD-10-CM from simple-icd-10-cm)."""
    from consultant.codes.icd10cm import icd10cm_release, iter_icd10cm
    from consultant.codes.releases import load_release, release_start
    from consultant.codes.store import load_codes

    if system != ICD10CM:
        fail(f"cannot load {system!r}: only icd10cm ships; use 'codes import' for files")
    ready()
    if sys.stderr.isatty():
        typer.echo("reading ICD-10-CM from the simple-icd-10-cm package...", err=True)
    records = list(iter_icd10cm())
    name = icd10cm_release()
    effective = release_start(name)
    with _progress("loading ICD-10-CM", len(records)) as progress, session_scope() as session:
        if effective is None:
            report = load_codes(session, ICD10CM, name, records, progress)
        else:
            kept = load_release(
                session,
                ICD10CM,
                records,
                name=name,
                effective=effective,
                source="simple-icd-10-cm",
                progress=progress,
            )
            report = kept.catalog
    _report(report, as_json)


@import_app.command("icd10cm")
def import_icd10cm(
    path: FileArgument,
    effective: Annotated[
        str,
        typer.Option(
            "--effective",
            help="The first date of service the release applies to (YYYY-MM-DD), "
            "e.g. 2025-10-01 for fiscal year 2026.",
        ),
    ],
    release: ReleaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import CMS's ICD-10-CM order file (icd10cm_order_YYYY.txt, or the zip holding it)
    as the release in effect from --effective; earlier releases stay for earlier dates."""
    from consultant.codes.icd10cm_order import NotAnOrderFile, parse_icd10cm_order
    from consultant.codes.releases import load_release

    try:
        starts = date.fromisoformat(effective)
    except ValueError:
        fail(f"--effective {effective!r} is not a date (YYYY-MM-DD)")
    try:
        records = _read(path, parse_icd10cm_order)
    except NotAnOrderFile as exc:
        fail(f"{path}: {exc} (nothing was loaded)")
    ready()
    with _progress("importing ICD-10-CM", len(records)) as progress, session_scope() as session:
        report = load_release(
            session,
            ICD10CM,
            records,
            name=_release(release, path),
            effective=starts,
            source=path.name,
            progress=progress,
        )
    _report(report, as_json)


@import_app.command("hcpcs")
def import_hcpcs(
    path: FileArgument, release: ReleaseOption = None, as_json: JsonOption = False
) -> None:
    """Import CMS's annual HCPCS Level II file (fixed width): codes and modifiers."""
    from consultant.codes.hcpcs import parse_hcpcs

    _import_codes(path, HCPCS, parse_hcpcs, label="HCPCS", release=release, as_json=as_json)


@import_app.command("cpt")
def import_cpt(
    path: FileArgument, release: ReleaseOption = None, as_json: JsonOption = False
) -> None:
    """Import your licensed CPT descriptors: a CSV of code,descriptor."""
    from consultant.codes.cpt import parse_cpt_csv

    _import_codes(path, CPT, parse_cpt_csv, label="CPT", release=release, as_json=as_json)


def _import_codes(
    path: Path,
    system: str,
    parser: Callable[[bytes], Sequence[CodeRecord]],
    *,
    label: str,
    release: str | None,
    as_json: bool,
) -> None:
    """Read a code file whole (refusing it with the line at fault), then load it."""
    from consultant.codes.store import load_codes

    records = _read(path, parser)
    ready()
    with _progress(f"importing {label}", len(records)) as progress, session_scope() as session:
        report = load_codes(session, system, _release(release, path), records, progress)
    _report(report, as_json)


@import_app.command("ptp")
def import_ptp(
    path: FileArgument, release: ReleaseOption = None, as_json: JsonOption = False
) -> None:
    """Import an NCCI procedure-to-procedure edit file (CMS's tab-delimited layout)."""
    from consultant.codes.ncci import parse_ptp
    from consultant.codes.store import load_ptp

    edits = _read(path, parse_ptp)
    ready()
    with _progress("importing NCCI PTP", len(edits)) as progress, session_scope() as session:
        report = load_ptp(session, _release(release, path), edits, progress)
    _report(report, as_json)


@import_app.command("mue")
def import_mue(
    path: FileArgument, release: ReleaseOption = None, as_json: JsonOption = False
) -> None:
    """Import an NCCI MUE table (CMS's CSV layout)."""
    from consultant.codes.ncci import parse_mue
    from consultant.codes.store import load_mue

    limits = _read(path, parse_mue)
    ready()
    with _progress("importing NCCI MUE", len(limits)) as progress, session_scope() as session:
        report = load_mue(session, _release(release, path), limits, progress)
    _report(report, as_json)


def _input_text(source: str) -> str:
    """Text from stdin (``-``), a PDF's text layer, or a text file."""
    from consultant.codes.analysis import UnreadablePdf, pdf_text

    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        fail(f"{source}: no such file")
    data = path.read_bytes()
    if data.startswith(b"%PDF"):
        try:
            return pdf_text(data)
        except UnreadablePdf as exc:
            fail(f"{source}: {exc}")
    return data.decode("utf-8", errors="replace")


def _catalog(session: Session) -> Any:
    from consultant.codes.store import cached_catalog

    return cached_catalog(session)


@app.command("extract")
def extract(
    source: Annotated[str, typer.Argument(help="A text or PDF file, or - for stdin.")] = "-",
    as_json: JsonOption = False,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help='Read {"id", "text"} lines on stdin; one result each.')
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The day the case arrived (YYYY-MM-DD; default today): codes are checked "
            "by the releases in effect on the date of service the text gives, else on it.",
        ),
    ] = None,
) -> None:
    """Find the codes in a text, check each against the catalog, and suggest a specialty."""
    from consultant.codes.analysis import analyse

    day = date.fromisoformat(as_of) if as_of else date.today()
    ready()
    with session_scope() as session:
        catalog = _catalog(session)
    if jsonl:
        for line in sys.stdin:
            if line.strip():
                typer.echo(json.dumps(_jsonl_result(line, catalog, day), default=str))
        return
    result = analyse([("text", _input_text(source))], catalog, day)
    if as_json:
        print_json(result.as_dict())
        return
    for checked in result.codes:
        found, status = checked.found, checked.status
        ambiguous = "ambiguous: " if checked.readings else ""
        typer.echo(
            f"{found.key:<24} {status.status:<11} {found.confidence:.2f}  "
            f"{ambiguous}{status.description or ''}"
        )
        for reading in checked.readings:
            typer.echo(
                f"{'  or ' + reading.system + ':' + reading.code:<24} "
                f"{reading.status.status:<11}       {reading.status.description or ''}"
            )
    for message in [c.message for c in result.conflicts] + [
        u.message for u in result.units_exceeded
    ]:
        typer.echo(f"! {message}")
    typer.echo(f"specialty: {result.specialty}")
    basis = "the date of service in the text" if result.date_of_service else "the day received"
    typer.echo(f"checked by the code releases in effect on {result.checked_on} ({basis})")


def _jsonl_result(line: str, catalog: Any, day: date) -> dict[str, Any]:
    from consultant.codes.analysis import analyse

    try:
        item = json.loads(line)
    except ValueError as exc:
        return {"id": None, "error": f"not JSON: {exc}"}
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        item_id = item.get("id") if isinstance(item, dict) else None
        return {"id": item_id, "error": 'expected {"id": ..., "text": "..."}'}
    return {"id": item.get("id"), **analyse([("text", item["text"])], catalog, day).as_dict()}


@app.command("search")
def search(
    query: str,
    system: Annotated[str | None, typer.Option("--system", help="icd10cm, hcpcs or cpt.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Ranked full-text search over code descriptions and notes."""
    from consultant.codes.search import search_codes

    if system is not None and system not in SYSTEMS:
        fail(f"unknown system {system!r}: choose one of {', '.join(SYSTEMS)}")
    ready()
    with session_scope() as session:
        hits = search_codes(session, query, system=system, limit=limit)
    if as_json:
        print_json([hit.as_dict() for hit in hits])
        return
    for hit in hits:
        flag = "" if hit.billable else " (header)"
        typer.echo(f"{hit.system:<8} {hit.code:<9} {hit.description}{flag}")


@app.command("show")
def show(code: str, as_json: JsonOption = False) -> None:
    """One code: status, description, notes, and the codes under it (a prefix lookup)."""
    from consultant.codes.show import show_code

    ready()
    with session_scope() as session:
        readings = show_code(session, _catalog(session), code, date.today())
    if not readings:
        fail(f"{code}: not in any loaded code system")
    if as_json:
        print_json(readings)
        return
    for reading in readings:
        typer.echo(f"{reading['system']} {reading['code']}: {reading['description'] or ''}")
        typer.echo(f"  {reading['status']}: {reading['detail']}")
        if reading["notes"]:
            typer.echo("  " + reading["notes"].replace("\n", "\n  "))
        for child in reading["under"]:
            mark = "" if child["billable"] else " (header)"
            typer.echo(f"    {child['code']:<9} {child['description']}{mark}")


@app.command("status")
def status(as_json: JsonOption = False) -> None:
    """What is loaded: each code system and NCCI table with its release and size, and
    every release of a system kept for earlier dates of service."""
    from consultant.codes.releases import loaded_systems

    ready()
    with session_scope() as session:
        loaded = loaded_systems(session)
    if as_json:
        print_json(loaded)
        return
    if not loaded:
        typer.echo("nothing loaded: run 'consultant codes load icd10cm'")
    for item in loaded:
        typer.echo(
            f"{item['name']:<10} {item['release']:<12} {item['count']:>7}  {item['loaded_at']}"
        )
        for release in item["releases"]:
            typer.echo(f"  {_release_line(release)}")
    if not any(item["name"] == CPT for item in loaded):
        typer.echo("cpt: no descriptor file imported; CPT codes are checked by format and section")


def _release_line(release: dict[str, Any]) -> str:
    until = f"to {release['effective_to']}" if release["effective_to"] else "onwards"
    return (
        f"{release['name']:<10} from {release['effective_from']} {until:<13} "
        f"{release['count']:>7} codes  loaded {release['loaded_at']}  ({release['source']})"
    )


@app.command("specialties")
def codes_specialties(as_json: JsonOption = False) -> None:
    """The specialties cases are routed by, as coders list them (coders add --specialty)."""
    from consultant.codes.specialty import SPECIALTIES
    from consultant.routing.policy import GENERALIST, family

    rows = [{"name": name, "family": family(name)} for name in SPECIALTIES]
    rows.append({"name": GENERALIST, "family": "any case"})
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']:<36} {row['family']}")
