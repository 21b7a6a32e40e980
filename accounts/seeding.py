"""Create users in bulk from rows, all or nothing, skipping those that already exist."""

import csv
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}
_COLUMNS = ("username", "display_name", "password", "is_staff")

# What `--staff` (or is_staff in a file) gives: see everything the admin shows, revoke
# certificates and lift login lockouts. Not change_user: Django's user form edits
# permissions and is_superuser too, so whoever may change users is a superuser in effect
# (`--superuser` gives that).
OPERATORS_GROUP = "SecureChat operators"
OPERATOR_PERMISSIONS = (
    "accounts.view_user",
    "accounts.view_loginlockout",
    "accounts.change_loginlockout",  # the lockouts' "unlock" action
    "keys.view_certificate",
    "keys.change_certificate",  # the certificates' "revoke" action (keys/admin.py)
    "keys.view_certificateauthority",
    "keys.view_auditevent",
    "chat.view_conversation",
    "chat.view_invitation",
)


@dataclass(frozen=True)
class SeedRow:
    username: str
    display_name: str = ""
    password: str | None = None  # None: generate one and report it once
    is_staff: bool = False  # an operator (OPERATORS_GROUP)
    is_superuser: bool = False


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
    # The value is not repeated: in a shifted CSV row it may be someone's password.
    raise SeedError([f"{where}: is_staff must be true or false (or 1/0, yes/no)"])


def _text(record: dict, column: str, where: str) -> str:
    """A column as text; JSON may hold any type, so anything else is refused by name (the
    value itself may be a password: never repeat it)."""
    value = record.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SeedError([f"{where}: {column} must be a string, not {type(value).__name__}"])
    return value.strip() if column != "password" else value


def _load_records(path: Path) -> list[dict]:
    try:
        if path.suffix.lower() == ".json":
            records = json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                records = list(csv.DictReader(handle))
        else:
            raise SeedError([f"{path.name}: use a .csv or .json file"])
    except OSError as exc:
        raise SeedError([f"{path}: cannot read it ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise SeedError([f"{path.name}: not UTF-8 text"]) from None
    except json.JSONDecodeError as exc:
        raise SeedError(
            [f"{path.name}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"]
        ) from None
    except csv.Error as exc:
        raise SeedError([f"{path.name}: not valid CSV ({exc})"]) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SeedError([f"{path.name}: expected a JSON list of objects"])
    return records


def read_seed_file(path: Path) -> list[SeedRow]:
    """Read rows from a .json list of objects or a .csv with a header line."""
    rows = []
    for number, record in enumerate(_load_records(path), start=1):
        where = f"{path.name} row {number}"
        if None in record:  # csv.DictReader puts values beyond the header under None
            raise SeedError([f"{where}: more values than the header has columns"])
        unknown = set(record) - set(_COLUMNS)
        if unknown:
            raise SeedError([f"{where}: unknown column(s) {', '.join(sorted(unknown))}"])
        rows.append(
            SeedRow(
                username=_text(record, "username", where),
                display_name=_text(record, "display_name", where),
                password=_text(record, "password", where) or None,
                is_staff=_parse_bool(record.get("is_staff"), where),
            )
        )
    return rows


def random_rows(count: int, prefix: str = "demo") -> list[SeedRow]:
    if count < 1:
        raise SeedError([f"--random needs a number of users of at least 1, not {count}"])
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
            user = User(
                username=row.username,
                display_name=row.display_name,
                is_staff=row.is_staff or row.is_superuser,
                is_superuser=row.is_superuser,
            )
            user.set_password(password)
            user.save()
            if row.is_staff and not row.is_superuser:
                user.groups.add(operators_group())
            result.created.append((row.username, password if row.password is None else ""))
    return result


def operators_group() -> Group:
    """The operators' group with exactly OPERATOR_PERMISSIONS (set again each time, so an
    upgrade that adds one reaches existing operators)."""
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    wanted = [tuple(name.split(".")) for name in OPERATOR_PERMISSIONS]
    found = list(
        Permission.objects.filter(
            content_type__app_label__in={app for app, _ in wanted},
            codename__in={codename for _, codename in wanted},
        ).select_related("content_type")
    )
    permissions = [p for p in found if (p.content_type.app_label, p.codename) in wanted]
    if len(permissions) != len(wanted):  # a renamed model: fail loudly, not half-working
        missing = set(wanted) - {(p.content_type.app_label, p.codename) for p in permissions}
        raise SeedError([f"missing permission(s): {sorted(missing)}; run migrate first"])
    group.permissions.set(permissions)
    return group
