"""The members-mode membership rule, as set arithmetic (signatures are checked elsewhere)."""

import pytest

from cryptokit.membership import MembershipError, Statement, next_members

MEMBERS = frozenset({"alice", "bob", "carol"})


def change(action, subject, actor, roster=4) -> Statement:
    hashes = (b"s" * 32, b"e" * 32) if action == "add" else (b"", b"")
    return Statement(
        action=action,
        subject=subject,
        actor=actor,
        actor_serial="0a",
        roster_epoch=roster,
        nonce=b"n" * 16,
        signature=b"sig",
        subject_signing_sha256=hashes[0],
        subject_encryption_sha256=hashes[1],
    )


def after(*statements, members=MEMBERS):
    return next_members(members, owner="alice", roster_epoch=4, statements=list(statements))


def code_of(*statements) -> str:
    with pytest.raises(MembershipError) as refusal:
        after(*statements)
    return refusal.value.code


def test_no_statement_keeps_the_members():
    assert after() == MEMBERS


def test_signed_additions_leaves_and_removals_apply_together():
    assert after(
        change("add", "dave", "bob"),
        change("leave", "carol", "carol"),
        change("remove", "bob", "alice"),
    ) == {"alice", "dave"}


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        (change("add", "dave", "mallory"), "signer_not_member"),
        (change("add", "dave", "dave"), "signer_not_member"),
        (change("add", "bob", "alice"), "bad_statement"),
        (change("leave", "bob", "alice"), "bad_statement"),
        (change("leave", "mallory", "mallory"), "signer_not_member"),
        (change("remove", "carol", "bob"), "not_owner"),
        (change("remove", "mallory", "alice"), "not_owner"),
        (change("remove", "alice", "alice"), "bad_statement"),
        (change("add", "dave", "bob", roster=3), "stale_statement"),
        (change("promote", "bob", "alice"), "bad_statement"),
    ],
)
def test_a_change_the_rule_does_not_allow_is_refused(statement, code):
    assert code_of(statement) == code


def test_one_member_is_changed_once_per_record():
    assert code_of(change("add", "dave", "bob"), change("add", "dave", "carol")) == "bad_statement"


def test_a_statement_round_trips_through_json():
    statement = change("add", "dave", "bob")
    assert Statement.from_json(statement.to_json()) == statement
    with pytest.raises(MembershipError):
        Statement.from_json({"action": "add"})
