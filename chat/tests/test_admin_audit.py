"""The admin's pages that only show things have no Save button, and deleting a
conversation, one or several, is audited with who did it."""

import pytest

from accounts.models import User
from chat.models import Conversation, Invitation
from chat.services.conversations import create_conversation
from chat.tests.factories import make_member
from keys.models import AuditEvent, Certificate, CertificateAuthority
from securechat.tests.logcapture import captured

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = User.objects.create_user("root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def conversations(pki, users):
    make_member(users["alice"])
    make_member(users["bob"])
    return [create_conversation(users["alice"], ["bob"], title=t) for t in ("a", "b", "c")]


def test_read_only_pages_have_no_save_button(client, root, conversations, users):
    invitation = Invitation.objects.create(
        conversation=conversations[0], inviter=users["alice"], invitee=users["charlie"]
    )
    pages = {
        "certificate": f"/admin/keys/certificate/{Certificate.objects.first().pk}/change/",
        "CA": f"/admin/keys/certificateauthority/{CertificateAuthority.objects.first().pk}/change/",
        "audit event": f"/admin/keys/auditevent/{AuditEvent.objects.first().pk}/change/",
        "conversation": f"/admin/chat/conversation/{conversations[0].pk}/change/",
        "invitation": f"/admin/chat/invitation/{invitation.pk}/change/",
    }
    for what, url in pages.items():
        page = client.get(url)
        assert page.status_code == 200, what
        content = page.content.decode()
        for button in ('name="_save"', 'name="_continue"', 'name="_addanother"'):
            assert button not in content, f"{what} page shows {button}"
        # a page to read: its change POST is refused rather than silently ignored
        assert client.post(url, {}).status_code == 403, what


def test_certificates_and_cas_cannot_be_deleted_in_the_admin(client, root, conversations):
    certificate = Certificate.objects.first()
    ca = CertificateAuthority.objects.first()
    assert client.get(f"/admin/keys/certificate/{certificate.pk}/delete/").status_code == 403
    assert client.get(f"/admin/keys/certificateauthority/{ca.pk}/delete/").status_code == 403


def test_deleting_conversations_is_audited_one_by_one_and_in_bulk(
    client, root, conversations, django_capture_on_commit_callbacks
):
    first, second, third = conversations
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        page = client.post(f"/admin/chat/conversation/{first.pk}/delete/", {"post": "yes"})
        assert page.status_code == 302
        page = client.post(
            "/admin/chat/conversation/",
            {
                "action": "delete_selected",
                "_selected_action": [str(second.pk), str(third.pk)],
                "post": "yes",
            },
        )
        assert page.status_code == 302
    assert not Conversation.objects.exists()
    events = AuditEvent.objects.filter(action="admin.deleted")
    assert {(e.actor, e.detail) for e in events} == {
        (root, f"admin: chat.conversation pk={c.pk}") for c in conversations
    }
    logged = [line for line in lines if line.startswith("admin.deleted ")]
    assert len(logged) == 3 and all("actor=root" in line for line in logged)
    # the title is the members' business: the log names the conversation by its id only
    assert not any('"a"' in line or " a " in line for line in logged)
