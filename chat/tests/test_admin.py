import pytest

from accounts.models import User
from chat.services.conversations import create_conversation
from chat.services.messages import accept_message
from chat.tests.factories import make_member, seal


@pytest.mark.django_db
def test_the_admin_lists_conversations_without_any_ciphertext(client, pki, users):
    alice, _ = make_member(users["alice"]), make_member(users["bob"])
    conversation = create_conversation(users["alice"], ["bob"], title="ops")
    message = seal(alice, conversation.id, 1, "hello")
    accept_message(users["alice"], message)
    root = User.objects.create_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    page = client.get(f"/admin/chat/conversation/{conversation.pk}/change/").content.decode()
    assert "ops" in page and "bob" in page
    import base64

    assert base64.b64encode(message.ciphertext).decode()[:20] not in page
    client.force_login(users["charlie"])
    assert client.get("/admin/chat/conversation/").status_code == 302
