"""Synthetic HR data for the benchmarks: realistic, valid, deterministic by seed, any size.

A population is a stream of people generated one after the other from a seeded random
generator, so the same `Population` always gives the same rows, and files of 150,000 rows are
written row by row (only the national numbers and e-mail addresses in use are kept, to keep
them unique). What it holds, by default:

- valid rijksregisternummers (mod-97 check digits, the `2` prefix for births from 2000 on,
  about 16% of them) and about 1% bisnummers, written in the usual ways (`85.07.30-033.28`,
  `85073003328`);
- eight organisations: seven with a valid KBO number (some written with dots or a `BE`
  prefix) and a Flemish agency known by its OVO code;
- about 3% of the people with two organisations (two rows);
- about 2% externals, with an end date less than a year after their start and the IGS as
  employer (`employer_code`);
- about 30% holding "Premiezoeker Gebruiker" on the run date: half through the HR `rights`
  column, half through the grants file with a begin date and sometimes an end date; plus a few
  expired grants (about 1%).

`Population.day2` derives the next day's export with about 1% of the people changed: job
changes (department and job title), leavers (end date = day 1, so they are deactivated on day
2) and joiners (starting on day 2). `Population.new_holders` writes a grants file granting the
right to people who did not hold it. Run `python -m bench.generate --help` to write files.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from connector.hr.columns import GRANT_COLUMNS, HR_COLUMNS

RIGHT = "Premiezoeker Gebruiker"
DAY1 = dt.date(2026, 12, 1)

HR_FIELDS = HR_COLUMNS
GRANT_FIELDS = GRANT_COLUMNS


def kbo(first_eight: int) -> str:
    """A valid 10-digit KBO number from its first 8 digits (mod-97 check digits)."""
    return f"{first_eight:08d}{97 - first_eight % 97:02d}"


def nn_check(nine_digits: str, *, born_2000s: bool) -> str:
    """The two check digits of a national number: 97 - (number mod 97), '2' prefixed for 2000+."""
    base = int(("2" if born_2000s else "") + nine_digits)
    return f"{97 - base % 97:02d}"


def national_number(birth: dt.date, serial: int, *, bis: bool = False) -> str:
    """A valid rijksregisternummer (or, with `bis`, bisnummer: month + 40) as 11 digits."""
    month = birth.month + (40 if bis else 0)
    nine = f"{birth:%y}{month:02d}{birth:%d}{serial:03d}"
    return nine + nn_check(nine, born_2000s=birth.year >= 2000)


@dataclass(frozen=True, slots=True)
class Organisation:
    """An employer in the HR export."""

    code: str  # as written in the export
    name: str
    domain: str
    prefix: str  # employee id prefix
    weight: float  # share of the people


IGS_CODE = kbo(2167045)
ORGANISATIONS = (
    Organisation(kbo(2162937), "Gemeente Scheldeveld", "scheldeveld.be", "G", 0.26),
    Organisation("BE0207.451.227", "Stad Leiemonde", "leiemonde.be", "L", 0.20),
    Organisation(kbo(2123456), "OCMW Scheldeveld", "ocmw-scheldeveld.be", "O", 0.12),
    Organisation(kbo(2088881), "Gemeente Kempenrode", "kempenrode.be", "K", 0.12),
    Organisation("0211.552.347", "Gemeente Heuvelzele", "heuvelzele.be", "H", 0.10),
    Organisation(kbo(2190000), "Gemeente Polderkerke", "polderkerke.be", "P", 0.08),
    Organisation(kbo(10456789), "Politiezone Scheldeland", "pzscheldeland.be", "Z", 0.07),
    Organisation("OVO002949", "Agentschap Binnenlands Bestuur", "vlaanderen.be", "A", 0.05),
)

GIVEN = (
    "An",
    "Bram",
    "Charlotte",
    "Dirk",
    "Els",
    "Frank",
    "Greet",
    "Hans",
    "Ilse",
    "Jan",
    "Katrien",
    "Lieven",
    "Marie",
    "Noah",
    "Olivia",
    "Pieter",
    "Quinten",
    "Ruth",
    "Sofie",
    "Tom",
    "Ursula",
    "Vincent",
    "Wout",
    "Xavier",
    "Yasmine",
    "Zoë",
    "Amélie",
    "Bart",
    "Céline",
    "Dries",
    "Emma",
    "Femke",
    "Gert",
    "Hélène",
    "Inge",
    "Joris",
    "Kobe",
    "Lotte",
    "Mohamed",
    "Nina",
    "Ömer",
    "Paulien",
    "Rik",
    "Saar",
    "Thibault",
    "Valérie",
    "Wim",
    "Yusuf",
    "Lars",
    "Anaïs",
)
FAMILY = (
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Wouters",
    "De Smet",
    "Dubois",
    "Lambert",
    "Dupont",
    "Martens",
    "Vermeulen",
    "Van den Broeck",
    "De Clercq",
    "Hermans",
    "Aerts",
    "Smets",
    "Van Damme",
    "Declercq",
    "Michiels",
    "Pauwels",
    "Desmet",
    "De Vos",
    "Verstraete",
    "Coppens",
    "Vandenberghe",
    "D'Hondt",
    "El Amrani",
    "Yilmaz",
    "Nowak",
    "Van de Velde",
    "Lemmens",
    "Cuypers",
    "Segers",
    "Stevens",
    "Verhoeven",
    "Bogaerts",
    "Thys",
    "Baert",
    "Van Acker",
    "De Backer",
    "Moens",
    "Vandamme",
    "Geerts",
    "Verbruggen",
    "Leroy",
    "Slegers",
)
DEPARTMENTS = (
    "Burgerzaken",
    "Financiën",
    "Omgeving",
    "Welzijn",
    "Onderwijs",
    "Cultuur",
    "Sport",
    "Personeel",
    "ICT",
    "Technische dienst",
    "Communicatie",
    "Secretariaat",
    "Kinderopvang",
    "Woonzorgcentrum",
    "Wijkwerking",
)
JOBS = (
    "Administratief medewerker",
    "Deskundige",
    "Consulent",
    "Diensthoofd",
    "Maatschappelijk werker",
    "Technisch assistent",
    "Verzorgende",
    "Begeleider",
    "Projectleider",
    "Jurist",
    "Boekhouder",
    "Premiecoördinator",
    "Informaticus",
    "Onthaalmedewerker",
    "Verpleegkundige",
)


@dataclass(frozen=True, slots=True)
class Relation:
    """One HR row: one work relation of a person with one organisation."""

    employee_id: str
    organisation: Organisation
    email: str
    department: str
    job_title: str
    start: dt.date
    end: dt.date | None = None
    external: bool = False
    right_in_row: bool = False  # "Premiezoeker Gebruiker" in the rights column


@dataclass(frozen=True, slots=True)
class GrantRow:
    """One row of the grants file."""

    relation: Relation
    begin: dt.date | None
    end: dt.date | None


@dataclass(frozen=True, slots=True)
class Person:
    """One generated person: national number, names, 1..2 relations, grants-file rows."""

    index: int
    national_id: str  # as written in the export
    given_name: str
    family_name: str
    relations: tuple[Relation, ...]
    grants: tuple[GrantRow, ...] = ()
    holder: bool = False  # holds the right on day 1
    bis: bool = False
    born_2000s: bool = False


@dataclass(slots=True)
class Stats:
    """What a file holds, for the benchmark's report."""

    people: int = 0
    rows: int = 0
    holders: int = 0
    multi_organisation: int = 0
    externals: int = 0
    bisnummers: int = 0
    born_2000s: int = 0
    grant_rows: int = 0
    job_changes: int = 0
    leavers: int = 0
    joiners: int = 0
    new_holders: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts, by name."""
        return {name: getattr(self, name) for name in self.__slots__}

    def count(self, person: Person) -> None:
        """Add one person to the counts."""
        self.people += 1
        self.rows += len(person.relations)
        self.holders += person.holder
        self.multi_organisation += len(person.relations) > 1
        self.externals += any(r.external for r in person.relations)
        self.bisnummers += person.bis
        self.born_2000s += person.born_2000s
        self.grant_rows += len(person.grants)


@dataclass(frozen=True, slots=True)
class Files:
    """An HR export and its grants file, with what they hold."""

    hr: Path
    grants: Path
    stats: Stats


@dataclass(slots=True)
class Population:
    """A deterministic stream of people; `write` / `day2` / `new_holders` write CSV files."""

    people: int
    seed: int = 1
    day: dt.date = DAY1
    holders: float = 0.30
    multi_organisation: float = 0.03
    externals: float = 0.02
    bisnummers: float = 0.01
    _used_ids: set[str] = field(default_factory=set, repr=False)
    _used_emails: dict[str, int] = field(default_factory=dict, repr=False)
    _counters: dict[str, int] = field(default_factory=dict, repr=False)

    # --- generation ----------------------------------------------------------------------

    def stream(self) -> Iterator[Person]:
        """The population's people, in order (the same every time)."""
        self._reset()
        rng = random.Random(f"hr:{self.seed}")
        for index in range(self.people):
            yield self._person(rng, index, start_from=None)

    def joiners(self, count: int, start: dt.date) -> Iterator[Person]:
        """New people starting on `start` (call after a full `stream()`, to stay unique)."""
        rng = random.Random(f"joiners:{self.seed}:{start}")
        for offset in range(count):
            yield self._person(rng, self.people + offset, start_from=start)

    def _reset(self) -> None:
        self._used_ids.clear()
        self._used_emails.clear()
        self._counters.clear()

    def _person(self, rng: random.Random, index: int, start_from: dt.date | None) -> Person:
        bis = rng.random() < self.bisnummers
        digits, birth = self._national_id(rng, bis)
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        written = _written_nn(digits, rng)
        roll = rng.random()
        external = roll < self.externals
        multi = not external and roll < self.externals + self.multi_organisation
        first_org = _weighted_organisation(rng)
        relations = [self._relation(rng, first_org, given, family, external, start_from)]
        if multi:
            others = [o for o in ORGANISATIONS if o is not first_org]
            second = self._relation(
                rng, _weighted_organisation(rng, others), given, family, False, start_from
            )
            relations.append(second)
        holder = rng.random() < self.holders
        grants: list[GrantRow] = []
        if holder:
            which = rng.randrange(len(relations))
            chosen = relations[which]
            if rng.random() < 0.5:
                relations[which] = replace(chosen, right_in_row=True)
            else:
                begin: dt.date | None = start_from
                if start_from is None and rng.random() < 0.8:
                    begin = _between(rng, chosen.start, self.day)
                end = None
                if rng.random() < 0.2:
                    end = self.day + dt.timedelta(days=rng.randrange(30, 720))
                if chosen.end is not None and end is not None:
                    end = min(end, chosen.end)
                grants.append(GrantRow(chosen, begin, end))
        elif rng.random() < 0.01 and start_from is None:
            # An expired grant: the right was held for a while, and is no more.
            chosen = relations[0]
            end = self.day - dt.timedelta(days=rng.randrange(1, 200))
            if end >= chosen.start:
                grants.append(GrantRow(chosen, chosen.start, end))
        return Person(
            index=index,
            national_id=written,
            given_name=given,
            family_name=family,
            relations=tuple(relations),
            grants=tuple(grants),
            holder=holder,
            bis=bis,
            born_2000s=birth.year >= 2000,
        )

    def _national_id(self, rng: random.Random, bis: bool) -> tuple[str, dt.date]:
        while True:
            birth = dt.date(1958, 1, 1) + dt.timedelta(days=rng.randrange(50 * 365))
            digits = national_number(birth, rng.randint(1, 998), bis=bis)
            if digits not in self._used_ids:
                self._used_ids.add(digits)
                return digits, birth

    def _relation(
        self,
        rng: random.Random,
        organisation: Organisation,
        given: str,
        family: str,
        external: bool,
        start_from: dt.date | None,
    ) -> Relation:
        number = self._counters.get(organisation.prefix, 0) + 1
        self._counters[organisation.prefix] = number
        employee_id = f"{'X' if external else organisation.prefix}{number:06d}"
        end = None
        if start_from is not None:
            start = start_from
        elif external:
            start = self.day - dt.timedelta(days=rng.randrange(0, 200))
        else:
            start = _between(rng, dt.date(1995, 1, 1), self.day)
        if external:
            end = max(start, self.day) + dt.timedelta(days=rng.randrange(1, 150))
        return Relation(
            employee_id=employee_id,
            organisation=organisation,
            email=self._email(given, family, organisation.domain),
            department=rng.choice(DEPARTMENTS),
            job_title=rng.choice(JOBS),
            start=start,
            end=end,
            external=external,
        )

    def _email(self, given: str, family: str, domain: str) -> str:
        local = f"{_ascii(given)}.{_ascii(family)}"
        base = f"{local}@{domain}"
        seen = self._used_emails.get(base, 0)
        self._used_emails[base] = seen + 1
        return base if seen == 0 else f"{local}{seen + 1}@{domain}"

    # --- files ---------------------------------------------------------------------------

    def write(self, directory: Path, name: str = "day1") -> Files:
        """Write the day-1 export (`<name>-hr.csv`) and grants file (`<name>-grants.csv`)."""
        stats = Stats()
        with _Writer(directory, name) as out:
            for person in self.stream():
                stats.count(person)
                out.person(person)
        return Files(out.hr_path, out.grants_path, stats)

    def day2(self, directory: Path, changes: float = 0.01, name: str = "day2") -> Files:
        """Write the next day's export: `changes` of the people changed (jobs, leavers, joiners).

        Of the changed people, 40% change jobs (department and job title), 30% leave (every
        relation ends on day 1, their last working day) and 30% join (starting on day 2).
        """
        total = round(self.people * changes)
        job_changes, leavers = round(total * 0.4), round(total * 0.3)
        joiners = total - job_changes - leavers
        rng = random.Random(f"day2:{self.seed}")
        chosen = rng.sample(range(self.people), job_changes + leavers)
        changing = set(chosen[:job_changes])
        leaving = set(chosen[job_changes:])
        stats = Stats()
        day2 = self.day + dt.timedelta(days=1)
        with _Writer(directory, name) as out:
            for person in self.stream():
                if person.index in changing:
                    person = _job_change(person, rng)
                    stats.job_changes += 1
                elif person.index in leaving:
                    person = _leaver(person, self.day)
                    stats.leavers += 1
                stats.count(person)
                out.person(person)
            for person in self.joiners(joiners, day2):
                stats.count(person)
                stats.joiners += 1
                out.person(person)
        return Files(out.hr_path, out.grants_path, stats)

    def new_holders(self, directory: Path, count: int, name: str = "holders") -> Files:
        """The day-1 export, and its grants file plus the right for `count` non-holders from
        day 2 on (the first ones in order); fails if there are fewer non-holders."""
        stats = Stats()
        begin = self.day + dt.timedelta(days=1)
        with _Writer(directory, name) as out:
            for person in self.stream():
                if stats.new_holders < count and not person.holder:
                    grant = GrantRow(person.relations[0], begin, None)
                    person = replace(person, grants=(*person.grants, grant), holder=True)
                    stats.new_holders += 1
                stats.count(person)
                out.person(person)
        if stats.new_holders < count:
            raise ValueError(f"only {stats.new_holders} non-holders, {count} asked for")
        return Files(out.hr_path, out.grants_path, stats)


class _Writer:
    """Writes people to an HR CSV file and a grants CSV file, row by row."""

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.hr_path = directory / f"{name}-hr.csv"
        self.grants_path = directory / f"{name}-grants.csv"
        self._files: list[TextIO] = []

    def __enter__(self) -> _Writer:
        hr = self.hr_path.open("w", encoding="utf-8", newline="")
        grants = self.grants_path.open("w", encoding="utf-8", newline="")
        self._files = [hr, grants]
        self._hr = csv.writer(hr)
        self._grants = csv.writer(grants)
        self._hr.writerow(HR_FIELDS)
        self._grants.writerow(GRANT_FIELDS)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._files:
            handle.close()

    def person(self, person: Person) -> None:
        """Write one person's rows and grant rows."""
        for relation in person.relations:
            organisation = relation.organisation
            self._hr.writerow(
                (
                    relation.employee_id,
                    person.national_id,
                    person.given_name,
                    person.family_name,
                    relation.email,
                    organisation.code,
                    organisation.name,
                    relation.department,
                    relation.job_title,
                    "external" if relation.external else "employee",
                    IGS_CODE if relation.external else "",
                    relation.start.isoformat(),
                    relation.end.isoformat() if relation.end else "",
                    RIGHT if relation.right_in_row else "",
                )
            )
        for grant in person.grants:
            self._grants.writerow(
                (
                    grant.relation.organisation.code,
                    grant.relation.employee_id,
                    RIGHT,
                    grant.begin.isoformat() if grant.begin else "",
                    grant.end.isoformat() if grant.end else "",
                )
            )


def _job_change(person: Person, rng: random.Random) -> Person:
    first = person.relations[0]
    department = rng.choice([d for d in DEPARTMENTS if d != first.department])
    job_title = rng.choice([j for j in JOBS if j != first.job_title])
    changed = replace(first, department=department, job_title=job_title)
    return replace(person, relations=(changed, *person.relations[1:]))


def _leaver(person: Person, last_day: dt.date) -> Person:
    relations = tuple(
        replace(r, end=min(r.end, last_day) if r.end else last_day) for r in person.relations
    )
    grants = tuple(
        replace(g, end=min(g.end, last_day) if g.end else None)
        for g in person.grants
        if g.begin is None or g.begin <= last_day
    )
    return replace(person, relations=relations, grants=grants)


def _weighted_organisation(
    rng: random.Random, choices: tuple[Organisation, ...] | list[Organisation] = ORGANISATIONS
) -> Organisation:
    return rng.choices(list(choices), weights=[o.weight for o in choices])[0]


def _between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A random date in `first..last` (inclusive)."""
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))


def _written_nn(digits: str, rng: random.Random) -> str:
    """A national number as HR systems write it: mostly formatted, sometimes bare digits."""
    if rng.random() < 0.3:
        return digits
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-{digits[6:9]}.{digits[9:11]}"


_ASCII = str.maketrans(
    {
        "é": "e",
        "ë": "e",
        "è": "e",
        "ï": "i",
        "ö": "o",
        "Ö": "o",
        "ç": "c",
        "'": "",
        " ": "",
        "à": "a",
    }
)


def _ascii(name: str) -> str:
    return name.translate(_ASCII).lower()


def main(argv: list[str] | None = None) -> None:
    """Write HR files: `python -m bench.generate --people 10000 --out /tmp/hr [--day2]`."""
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=DAY1, help="day 1")
    parser.add_argument("--out", type=Path, default=Path("bench/results/data"))
    parser.add_argument("--day2", action="store_true", help="also write day 2 (1%% changes)")
    parser.add_argument("--changes", type=float, default=0.01)
    args = parser.parse_args(argv)
    population = Population(args.people, seed=args.seed, day=args.day)
    written = [population.write(args.out)]
    if args.day2:
        written.append(population.day2(args.out, args.changes))
    for files in written:
        print(
            json.dumps({"hr": str(files.hr), "grants": str(files.grants), **files.stats.as_dict()})
        )


if __name__ == "__main__":
    main()
