import pytest

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_staff_user_sees_the_user_list(client):
    admin = User.objects.create_user("root", password="x", is_staff=True, is_superuser=True)
    User.objects.create_user("alice", display_name="Alice A.")
    client.force_login(admin)
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 200
    assert b"alice" in response.content and b"Alice A." in response.content


def test_non_staff_user_gets_no_admin_access(client):
    charlie = User.objects.create_user("charlie", password="x")
    client.force_login(charlie)
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.get("/admin/").status_code == 302
