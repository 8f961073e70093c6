"""Rendering reports for people: rich tables on the terminal. Masked, like the reports.

Data (HR values, right and group names, reasons, server text, the journal) is never Rich
markup: it goes to the console as `Text`, so `[/]` or `[red]` in a value prints as it is.
Only the renderer's own words carry styles."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.people_display import Directory
from connector.plan import MembershipOp, Operation, OpKind, UserOp
from connector.report import Report
from connector.state import JournalEntry
from connector.target.check import Verdict
from connector.upcoming import Event, EventKind, Timeline, shortfall_message

if TYPE_CHECKING:
    from connector.target.checking.job import CheckedTarget

TITLES = {
    OpKind.CREATE: "Create",
    OpKind.ACTIVATE: "Activate",
    OpKind.UPDATE: "Update",
    OpKind.GRANT: "Grant",
    OpKind.WITHDRAW: "Withdraw",
    OpKind.DEACTIVATE: "Deactivate",
    OpKind.DELETE: "Delete",
}


def _short(path: str) -> str:
    """`urn:...:enterprise:2.0:User:department` -> `enterprise:department`."""
    if not path.startswith("urn:"):
        return path
    parts = path.split(":")
    return f"{parts[-4]}:{parts[-1]}"


def _detail(op: Operation, directory: Directory) -> str:
    if isinstance(op, MembershipOp):
        window = ""
        if op.begin or op.end:
            window = f" ({op.begin or '…'} → {op.end or '…'})"
        named = (directory.organisation(code) for code in op.organisations)
        orgs = f" via {', '.join(named)}" if op.organisations else ""
        return f"{op.group}{orgs}{window}"
    if op.kind is OpKind.CREATE:
        return "new user"
    assert isinstance(op, UserOp)
    return ", ".join(_short(c.path) for c in op.changes) or "-"


def _text(value: object) -> Text:
    """A piece of data as literal text (no markup, no emoji codes, no highlighting)."""
    return Text(str(value))


def _person(report: Report, label: str) -> str:
    """A person as this report shows them: keys, name (where on) and masked number."""
    return report.directory.person(label, report.names)


def _rows(number: int) -> str:
    return f"{number} row" if number == 1 else f"{number} rows"


def _line(*parts: str | tuple[str, str]) -> Text:
    """A line of literal text; `(text, style)` parts are styled."""
    return Text.assemble(*parts)


def render_rejections(console: Console, report: Report) -> None:
    """A table of rejected rows, if any."""
    if not report.rejected:
        return
    rows, reasons = report.rejected_rows, len(report.rejected)
    title = (
        f"Rejected rows ({rows})"
        if rows == reasons
        else f"Rejected rows ({rows}; {reasons} reasons)"
    )
    table = Table(title=title, title_justify="left")
    for column in ("file", "row", "field", "reason"):
        table.add_column(column, overflow="fold")
    for r in report.rejected:
        row = "" if r.row is None else (f"{r.row} (line {r.line})" if r.line else str(r.row))
        table.add_row(_text(r.file), _text(row), _text(r.field or ""), _text(r.reason))
    console.print(table)


def render_warnings(console: Console, report: Report) -> None:
    """One line per warning."""
    for w in report.warnings:
        message = w.message
        if w.person:  # the label in the message, as reports show the person
            message = message.replace(w.person, _person(report, w.person))
        console.print(_line(("warning", "yellow"), f" [{w.kind}] {message}"))


def render_plan(console: Console, report: Report, title: str = "Plan") -> None:
    """The plan's operations, grouped by kind."""
    plan = report.plan
    if plan is None:
        return
    if plan.empty:
        console.print(_line(f"{title} for {plan.as_of}: nothing to change."))
        return
    console.print(_line(f"{title} for {plan.as_of}:"))
    for kind in OpKind:
        ops = plan.of_kind(kind)
        if not ops:
            continue
        table = Table(title=f"{TITLES[kind]} ({len(ops)})", title_justify="left")
        table.add_column("person")
        table.add_column("what", overflow="fold")
        for op in sorted(ops, key=lambda op: op.label):
            table.add_row(_text(_person(report, op.label)), _text(_detail(op, report.directory)))
        console.print(table)


def render_failures(console: Console, report: Report) -> None:
    """A table of failed operations, if any."""
    if not report.failures:
        return
    table = Table(title=f"Failures ({len(report.failures)})", title_justify="left")
    for column in ("person", "operation", "reason"):
        table.add_column(column, overflow="fold")
    for f in report.failures:
        table.add_row(_text(_person(report, f.person)), _text(f.operation), _text(f.reason))
    console.print(table)


def render_cases(console: Console, report: Report) -> None:
    """A table of open correlation cases (people held until resolved), if any."""
    if not report.correlation_cases:
        return
    title = f"Correlation cases ({len(report.correlation_cases)}): held until resolved"
    table = Table(title=title, title_justify="left")
    for column in ("person", "account found", "why it is not theirs"):
        table.add_column(column, overflow="fold")
    for case in report.correlation_cases:
        table.add_row(_text(case.person_text()), _text(case.account_text()), _text(case.reason))
    console.print(table)
    console.print(
        _line(
            "Resolve each with `scim-connector resolve --employee ORG:ID` and `--link SCIM_ID` "
            "(that account is theirs) or `--new-account`; see README, "
            '"Resolving a correlation case".'
        )
    )


def render_summary(console: Console, report: Report) -> None:
    """Planned and done operations per kind, for a run that applied something."""
    planned = report.extra.get("planned")
    if not isinstance(planned, dict) or report.dry_run or report.safety_stopped:
        return
    table = Table(title="Summary", title_justify="left")
    for column in ("operation", "planned", "done"):
        table.add_column(column, justify="right" if column != "operation" else "left")
    for kind in OpKind:
        if planned.get(kind.value) or report.counts.get(kind.value):
            done = report.counts.get(kind.value, 0)
            table.add_row(_text(kind.value), _text(planned.get(kind.value, 0)), _text(done))
    if table.row_count:
        console.print(table)


def render_counts(console: Console, report: Report) -> None:
    """The summary line of counts, rejections, warnings and failures."""
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    if report.plan is None and not any(report.counts.values()):  # validate plans nothing
        counts = ""
    console.print(
        _line(
            f"{report.command} {report.run_id} as of {report.as_of}: "
            + (f"{counts}; " if counts else "")
            + f"rejected rows {report.rejected_rows}, warnings {len(report.warnings)}, "
            f"failures {len(report.failures)} (exit {report.exit_code})"
        )
    )


def render_stop(console: Console, report: Report) -> None:
    """What a run stopped by a safety check did (nothing) and how to let it through."""
    approve = report.extra.get("approve")
    how = "run again with --force"
    how += ", or approve them once:" if isinstance(approve, str) else "."
    console.print(
        _line(
            ("Stopped by a safety check: nothing was applied.", "red"),
            f" Check the HR export; if these changes are intended, {how}",
        )
    )
    if isinstance(approve, str):
        console.print(_line("  ", (approve, "bold")))


def render_report(console: Console, report: Report, details: bool = True) -> None:
    """Everything about a report, for people (`details=False`: rejections and warnings counted)."""
    if details:
        render_rejections(console, report)
        render_warnings(console, report)
    elif report.rejected or report.warnings:
        console.print(
            _line(
                f"({_rows(report.rejected_rows)} rejected and {len(report.warnings)} warnings, "
                "as above)"
            )
        )
    if report.command != "validate":
        render_plan(console, report)
        render_failures(console, report)
        render_cases(console, report)
        render_summary(console, report)
        if report.safety_stopped:
            render_stop(console, report)
    else:
        people = report.extra.get("people", 0)
        console.print(
            _line(
                f"Read {report.extra.get('records', 0)} records ({people} people) and "
                f"{report.extra.get('grants', 0)} grants; {_rows(report.rejected_rows)} rejected."
            )
        )
    render_counts(console, report)


def _in_zone(at: str, zone: ZoneInfo) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zone)


def local_moment(at: str, zone: ZoneInfo) -> str:
    """A journal time (ISO, UTC) as ISO in the configured time zone (`...T08:30:00.000+01:00`)."""
    local = _in_zone(at, zone)
    return local.isoformat(timespec="milliseconds") if local else at


def local_time(at: str, zone: ZoneInfo) -> str:
    """A journal time for people, in the configured time zone: `2026-12-01 08:30:00 CET`."""
    local = _in_zone(at, zone)
    return f"{local:%Y-%m-%d %H:%M:%S %Z}" if local else at


def render_journal(console: Console, entries: list[JournalEntry], zone: ZoneInfo) -> None:
    """The audit trail as a table, times in the configured time zone."""
    if not entries:
        console.print(_line("No entries."))
        return
    table = Table(title=f"Audit trail ({len(entries)} entries)", title_justify="left")
    for column in ("at", "run", "person", "operation", "phase", "detail"):
        table.add_column(column, overflow="fold")
    for e in entries:
        at = local_time(e.at, zone)
        cells = (at, e.run_id, e.person or "", e.kind, e.phase, e.detail or "")
        table.add_row(*(_text(cell) for cell in cells))
    console.print(table)


VERDICT_STYLES = {
    Verdict.OK: "green",
    Verdict.NOTE: "yellow",
    Verdict.INFO: "",
    Verdict.REFUSED: "red",
    Verdict.NOT_KEPT: "red",
    Verdict.PARTLY_KEPT: "yellow",
    Verdict.UNTRUSTED: "red",
    Verdict.UNVERIFIED: "yellow",
    Verdict.SKIPPED: "dim",
    Verdict.FAILED: "bold red",
}


def render_target_check(console: Console, checked: CheckedTarget) -> None:
    """The findings of `check-target` as one table (server text printed as is, never markup)."""
    check = checked.check
    if check.write_test:
        mode = "write test: throwaway resources were created, tried and deleted (see cleanup)"
    else:
        mode = "read-only, nothing was written (--write-test tries writes on throwaway resources)"
    console.print(Text(f"Target {check.base_url}: {mode}"))
    table = Table(title_justify="left")
    for column in ("area", "what", "announced", "observed", "verdict"):
        table.add_column(column, overflow="fold")
    for finding in check.findings:
        table.add_row(
            Text(finding.area.value),
            Text(finding.item),
            Text(finding.announced or "-"),
            Text(finding.observed or "-"),
            Text(finding.verdict.value, style=VERDICT_STYLES[finding.verdict]),
        )
    console.print(table)
    counts = ", ".join(f"{verdict} {number}" for verdict, number in check.counts().items())
    console.print(Text(f"{len(check.findings)} findings: {counts}"))


UPCOMING_WORDS = {
    EventKind.JOINS: ("+ joins", "first working day at"),
    EventKind.LEAVES: ("- leaves", "account goes inactive; left"),
    EventKind.RIGHT_BEGINS: ("+ right", "gets"),
    EventKind.RIGHT_ENDS: ("- right", "loses"),
}


def _upcoming_event(event: Event, timeline: Timeline, names: bool) -> Text:
    mark, words = UPCOMING_WORDS[event.kind]
    where = ", ".join(timeline.organisation(code) for code in event.organisations)
    what = f"{words} {where}"
    if event.right is not None:
        what = f"{words} {event.right!r} via {where}"
    if event.kind in (EventKind.LEAVES, EventKind.RIGHT_ENDS):
        what += f" (last day {event.day - dt.timedelta(days=1)})"
    return _line(f"  {mark:<9} ", event.person.text(names), f": {what}")


def render_upcoming(console: Console, timeline: Timeline, names: bool = True) -> None:
    """The look ahead as a compact timeline: one block per day on which something changes."""
    days = timeline.days
    ahead = len(days) - 1
    console.print(
        _line(
            f"Upcoming from {timeline.first} to {timeline.last}"
            f" ({ahead} day{'' if ahead == 1 else 's'}) if HR "
            "stays as it is (nothing was contacted):"
        )
    )
    for (organisation, right), counts in timeline.holders.items():
        where = timeline.organisation(organisation)
        console.print(_line(f"  {right!r} at {where}: {counts[0]} holder(s) on {timeline.first}"))
    shortfalls = {
        s.day: [t for t in timeline.shortfalls if t.day == s.day] for s in timeline.shortfalls
    }
    quiet = True
    for index, day in enumerate(days):
        events = timeline.events_on(day)
        changed = [
            (pair, counts[index - 1], counts[index])
            for pair, counts in timeline.holders.items()
            if index and counts[index] != counts[index - 1]
        ]
        short = shortfalls.get(day, [])
        if not (events or changed or short):
            continue
        quiet = False
        console.print(_line((f"{day} {day:%a}", "bold")))
        for event in events:
            console.print(_upcoming_event(event, timeline, names))
        for (organisation, right), before, after in changed:
            where = timeline.organisation(organisation)
            console.print(_line(f"  {'= holders':<9} {right!r} at {where}: {before} → {after}"))
        for shortfall in short:
            console.print(
                _line(
                    (f"  {'! warning':<9}", "yellow"), " ", shortfall_message(shortfall, timeline)
                )
            )
    if quiet:
        console.print(_line("Nothing changes in these days."))
