"""Create users in bulk from rows, all or nothing, skipping those that already exist."""

import csv
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


@dataclass(frozen=True)
class SeedRow:
    username: str
    display_name: str = ""
    password: str | None = None  # None: generate one and report it once
    is_staff: bool = False


@dataclass
class SeedResult:
    created: list[tuple[str, str]] = field(default_factory=list)  # (username, password)
    skipped: list[str] = field(default_factory=list)


class SeedError(Exception):
    """One or more rows are invalid; nothing was created."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def _parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SeedError([f"{where}: is_staff must be true or false, not {value!r}"])


def read_seed_file(path: Path) -> list[SeedRow]:
    """Read rows from a .json list of objects or a .csv with a header line."""
    if path.suffix.lower() == ".json":
        records = json.loads(path.read_text())
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise SeedError([f"{path.name}: expected a JSON list of objects"])
    elif path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            records = list(csv.DictReader(handle))
    else:
        raise SeedError([f"{path.name}: use a .csv or .json file"])
    rows = []
    for number, record in enumerate(records, start=1):
        where = f"{path.name} row {number}"
        unknown = set(record) - {"username", "display_name", "password", "is_staff"}
        if unknown:
            raise SeedError([f"{where}: unknown column(s) {', '.join(sorted(unknown))}"])
        rows.append(
            SeedRow(
                username=str(record.get("username") or "").strip(),
                display_name=str(record.get("display_name") or "").strip(),
                password=record.get("password") or None,
                is_staff=_parse_bool(record.get("is_staff"), where),
            )
        )
    return rows


def random_rows(count: int, prefix: str = "demo") -> list[SeedRow]:
    taken = set(User.objects.filter(username__startswith=prefix).values_list("username", flat=True))
    rows, number = [], 1
    while len(rows) < count:
        name = f"{prefix}{number:04d}"
        if name not in taken:
            rows.append(SeedRow(username=name, display_name=f"Demo user {number}"))
        number += 1
    return rows


def _row_problems(row: SeedRow, index: int, seen: set[str]) -> list[str]:
    where = f"row {index} ({row.username or 'no username'})"
    problems = []
    if row.username.casefold() in seen:
        problems.append(f"{where}: duplicate username in the input")
    seen.add(row.username.casefold())
    user = User(username=row.username, display_name=row.display_name)
    try:
        user.clean_fields(exclude=["password"])
    except ValidationError as exc:
        problems += [
            f"{where}: {name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items()
        ]
    if row.password is not None:
        try:
            validate_password(row.password, user)
        except ValidationError as exc:
            problems.append(f"{where}: password: {' '.join(exc.messages)}")
    return problems


def seed_users(rows: list[SeedRow]) -> SeedResult:
    """Create the users of `rows` that do not exist yet; raise SeedError and create none
    if any row is invalid."""
    existing = {
        name.casefold()
        for name in User.objects.filter(username__in=[r.username for r in rows]).values_list(
            "username", flat=True
        )
    }
    result, problems, seen = SeedResult(), [], set()
    to_create = []
    for index, row in enumerate(rows, start=1):
        if row.username.casefold() in existing:
            result.skipped.append(row.username)
            continue
        problems += _row_problems(row, index, seen)
        to_create.append(row)
    if problems:
        raise SeedError(problems)
    with transaction.atomic():
        for row in to_create:
            password = row.password or generate_password()
            user = User(username=row.username, display_name=row.display_name, is_staff=row.is_staff)
            user.set_password(password)
            user.save()
            result.created.append((row.username, password if row.password is None else ""))
    return result
