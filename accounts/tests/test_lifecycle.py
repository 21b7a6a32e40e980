"""Ending an account: deactivation (keys revoked, history kept) and deletion (only for an
account that never took part in a conversation), by command and in the admin."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from chat.models import KeyEpoch, Membership, Message
from chat.services.conversations import create_conversation
from chat.services.messages import accept_message
from chat.tests.factories import make_member, seal
from keys.models import AuditEvent, Certificate, KeyBackup
from keys.services import store_key_backup
from securechat.tests.logcapture import captured

pytestmark = pytest.mark.django_db


@pytest.fixture
def chatted(pki, users):
    """alice and bob share a conversation in which bob has written."""
    make_member(users["alice"])
    bob = make_member(users["bob"])
    conversation = create_conversation(users["alice"], ["bob"], title="plans")
    accept_message(users["bob"], seal(bob, conversation.id, conversation.current_epoch, "hi"))
    return conversation


@pytest.fixture
def root(client):
    user = User.objects.create_user("root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def manage(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_deactivation_revokes_the_keys_rekeys_and_keeps_history(
    client, chatted, users, django_capture_on_commit_callbacks
):
    bob = users["bob"]
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        out = manage("deactivate_user", "bob", "--reason", "left the team")
    bob.refresh_from_db()
    assert not bob.is_active
    assert "deactivated bob; revoked certificates: " in out
    certificates = Certificate.objects.filter(owner=bob)
    assert {c.status for c in certificates} == {"revoked"}
    assert {c.revocation_reason for c in certificates} == {"account deactivated: left the team"}
    chatted.refresh_from_db()
    epoch = KeyEpoch.objects.get(conversation=chatted, number=chatted.current_epoch)
    assert epoch.reason == "key_revoked"
    assert epoch.wrapped_keys.get(member=bob).wrapped_key == b""  # nothing new for bob
    # history stays: the membership, the message and the (revoked) certificates
    assert Membership.objects.filter(user=bob, left__isnull=True).exists()
    assert Message.objects.filter(sender=bob).count() == 1
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.subject == bob and event.detail == "command: left the team"
    assert any(
        line.startswith("user.deactivated ") and "subject=bob" in line and "via=command" in line
        for line in lines
    )
    assert sum(line.startswith("certificate.revoked ") for line in lines) == 2
    assert not client.login(username="bob", password="whatever")


def test_deactivating_twice_says_so_and_audits_once(chatted):
    manage("deactivate_user", "bob", "--reason", "left")
    assert "already deactivated" in manage("deactivate_user", "bob", "--reason", "left")
    assert AuditEvent.objects.filter(action="user.deactivated").count() == 1


def test_a_user_who_chatted_cannot_be_deleted_and_is_told_to_deactivate(chatted, users):
    with pytest.raises(CommandError) as error:
        manage("delete_user", "bob", "--reason", "gdpr request")
    message = str(error.value)
    assert "bob is or was a member of 1 conversation(s)" in message
    assert "sent 1 message(s)" in message
    assert "manage.py deactivate_user bob" in message and "\n" not in message
    assert User.objects.filter(username="bob").exists()


def test_a_user_who_never_chatted_is_deleted_with_keys_and_backup(
    pki, users, django_capture_on_commit_callbacks
):
    dave = User.objects.create_user("dave")
    make_member(dave)
    store_key_backup(dave, b"opaque", 1)
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        assert manage("delete_user", "dave", "--reason", "created by mistake") == "deleted dave\n"
    assert not User.objects.filter(username="dave").exists()
    assert not Certificate.objects.filter(owner__username="dave").exists()
    assert not KeyBackup.objects.exists()
    event = AuditEvent.objects.get(action="user.deleted")
    assert event.subject is None and event.detail == "command: dave: created by mistake"
    assert any(line.startswith("user.deleted ") and "subject=dave" in line for line in lines)


@pytest.mark.parametrize(
    "command", [["deactivate_user"], ["delete_user"], ["revoke"]], ids=lambda c: c[0]
)
def test_account_commands_refuse_bad_input_in_one_line(command, users):
    cases = [
        (["nobody", "--reason", "x"], "No user named 'nobody'."),
        (["alice", "--reason", "   "], "--reason must not be empty"),
        (["alice", "--reason", "x" * 201], "--reason is 201 characters; at most 200."),
        (["alice"], "the following arguments are required: --reason"),
    ]
    for arguments, expected in cases:
        with pytest.raises(CommandError) as error:
            manage(*command, *arguments)
        assert expected in str(error.value) and "\n" not in str(error.value)
    assert User.objects.get(username="alice").is_active


# --- the admin --------------------------------------------------------------------------


def _change_form_data(client, url: str) -> dict:
    """What the admin's change form would post back unchanged."""
    from django.forms import MultiWidget

    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled or value is None or value is False:
            continue
        if isinstance(field.widget, MultiWidget):
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{index}"] = part or ""
        else:
            data[name] = "on" if value is True else value
    return data


def test_clearing_active_in_the_admin_deactivates_as_the_command_does(
    client, root, chatted, users, django_capture_on_commit_callbacks
):
    bob = users["bob"]
    url = f"/admin/accounts/user/{bob.pk}/change/"
    data = _change_form_data(client, url)
    del data["is_active"]
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    bob.refresh_from_db()
    assert not bob.is_active
    assert {c.status for c in Certificate.objects.filter(owner=bob)} == {"revoked"}
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.actor == root and event.detail == "admin: Active cleared in the admin"
    assert any(line.startswith("user.deactivated ") and "actor=root" in line for line in lines)
    assert any(line.startswith("admin.changed ") and "Active" in line for line in lines)

    data["is_active"] = "on"
    client.post(url, data)
    assert AuditEvent.objects.filter(action="user.reactivated", actor=root).exists()


def test_deleting_a_user_with_keys_in_the_admin_explains_the_way_out(client, root, chatted):
    bob = User.objects.get(username="bob")
    page = client.get(f"/admin/accounts/user/{bob.pk}/delete/").content.decode()
    assert "Deactivate it instead" in page and "manage.py deactivate_user" in page
    client.post(f"/admin/accounts/user/{bob.pk}/delete/", {"post": "yes"})
    assert User.objects.filter(pk=bob.pk).exists()
    selected = client.post(
        "/admin/accounts/user/",
        {"action": "delete_selected", "_selected_action": [bob.pk]},
    ).content.decode()
    assert "Deactivate it instead" in selected


def test_deleting_users_in_the_admin_is_audited_one_by_one_and_in_bulk(
    client, root, django_capture_on_commit_callbacks
):
    one, two, three = (User.objects.create_user(name) for name in ("one", "two", "three"))
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        client.post(f"/admin/accounts/user/{one.pk}/delete/", {"post": "yes"})
        client.post(
            "/admin/accounts/user/",
            {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
        )
    assert not User.objects.filter(username__in=["one", "two", "three"]).exists()
    details = set(
        AuditEvent.objects.filter(action="admin.deleted").values_list("detail", flat=True)
    )
    assert details == {
        f"admin: accounts.user pk={one.pk} one",
        f"admin: accounts.user pk={two.pk} two",
        f"admin: accounts.user pk={three.pk} three",
    }
    assert all(event.actor == root for event in AuditEvent.objects.filter(action="admin.deleted"))
    assert sum(line.startswith("admin.deleted ") and "actor=root" in line for line in lines) == 3
