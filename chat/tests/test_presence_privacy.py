"""Presence flows only with consent: co-members and mutual contacts, never a stranger who
added you; "who is online" lists only people who are listed (staff only if they opt in)."""

import pytest

from accounts.models import User
from accounts.services import add_contact
from chat.services import conversations

pytestmark = pytest.mark.django_db


def test_adding_someone_does_not_stream_their_presence_until_they_add_you_back(users):
    alice, charlie = users["alice"], users["charlie"]
    add_contact(charlie, "alice")  # charlie wants to watch alice
    assert charlie.pk not in conversations.presence_audience(alice)
    assert alice.pk not in conversations.presence_audience(charlie)
    add_contact(alice, "charlie")  # alice consents by adding charlie back
    assert charlie.pk in conversations.presence_audience(alice)
    assert alice.pk in conversations.presence_audience(charlie)


def test_co_members_see_each_other_without_being_contacts(pki, users):
    alice, bob = users["alice"], users["bob"]
    started = conversations.create_conversation(alice, ["bob"])
    conversations.accept_request(str(started.id), bob)  # a stranger's: a request first
    assert bob.pk in conversations.presence_audience(alice)
    assert users["charlie"].pk not in conversations.presence_audience(alice)


def names(found) -> set[str]:
    return {u.username for u in found}


def test_search_hides_people_who_opted_out_and_staff_who_did_not_opt_in(users):
    alice, bob = users["alice"], users["bob"]
    admin = User.objects.create_user("admin", is_staff=True)
    assert names(conversations.search_users(alice, "")) == {"bob", "charlie"}
    bob.listed_in_search = False
    bob.save()
    admin.listed_in_search = True
    admin.save()
    assert names(conversations.search_users(alice, "")) == {"charlie", "admin"}
    assert names(conversations.search_users(alice, "bo")) == set()


def test_the_contacts_page_sets_the_listing_and_shows_who_added_you_back(client, users):
    alice = users["alice"]
    add_contact(alice, "bob")
    add_contact(alice, "charlie")
    add_contact(users["bob"], "alice")
    client.force_login(alice)
    page = client.get("/accounts/contacts/").content.decode()
    assert 'data-state="mutual"' in page and 'data-state="waiting"' in page
    client.post("/accounts/contacts/", {"listing": "1"})  # the box unticked
    alice.refresh_from_db()
    assert alice.listed_in_search is False
    assert "alice" not in names(conversations.search_users(users["bob"], ""))
    client.post("/accounts/contacts/", {"listing": "1", "listed": "on"})
    alice.refresh_from_db()
    assert alice.is_listed_in_search


def test_key_changes_reach_co_members_even_of_a_request(pki, users):
    alice, bob = users["alice"], users["bob"]
    conversations.create_conversation(alice, ["bob"])  # bob has not accepted
    assert bob.pk not in conversations.presence_audience(alice)
    assert bob.pk in conversations.key_audience(alice)
    assert alice.pk in conversations.key_audience(bob)
