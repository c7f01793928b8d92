"""Fixtures of the web page tests: a small world built through the services."""
from dataclasses import dataclass

import pytest
from django.test import Client

from accounts.models import User
from registry_policies.repositories.models import Repository
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.models import Organization, Team


@dataclass
class World:
    owner: User  # owns the organization "acme" and the user namespace "alice"
    member: User  # member of acme, in team "devs"
    stranger: User  # nobody to acme
    org: Organization
    team: Team
    own_repo: Repository  # alice/app, private
    org_private: Repository  # acme/secret, private
    org_public: Repository  # acme/open, public


@pytest.fixture
def world(make_user) -> World:
    owner, member, stranger = make_user("alice"), make_user("bob"), make_user("carol")
    org = tenancy.create_organization(name="acme", owner=owner)
    tenancy.set_organization_member(organization=org, user=member, role="member", actor=owner)
    team = tenancy.create_team(organization=org, name="devs", actor=owner)
    tenancy.add_team_member(team=team, user=member, actor=owner)
    return World(
        owner=owner, member=member, stranger=stranger, org=org, team=team,
        own_repo=create_repository(namespace=owner.namespace, name="app", actor=owner),
        org_private=create_repository(namespace=org.namespace, name="secret", actor=owner),
        org_public=create_repository(namespace=org.namespace, name="open", actor=owner, visibility="public"),
    )


@pytest.fixture
def as_user(client: Client):
    """as_user(user) -> the test client signed in as `user`."""

    def sign_in(user: User) -> Client:
        client.force_login(user)
        return client

    return sign_in
