"""Fixtures for the REST API tests: clients acting as a user, and objects built through services."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from registry_policies.repositories import services as repository_services
from registry_policies.repositories.models import Repository
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.models import Namespace, Organization, Team


@pytest.fixture
def client_for() -> Callable[[User | None], APIClient]:
    """client_for(user) -> an APIClient authenticated as `user` (None: anonymous)."""

    def factory(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return factory


@pytest.fixture
def make_repository(db: Any) -> Callable[..., Repository]:
    """make_repository("ns/name", visibility="private") through the repositories service."""

    def factory(full_name: str, *, visibility: str = "private", description: str = "") -> Repository:
        namespace_name, name = full_name.split("/")
        return repository_services.create_repository(
            namespace=Namespace.objects.get(name=namespace_name),
            name=name,
            actor=None,
            visibility=visibility,
            description=description,
        )

    return factory


@pytest.fixture
def make_organization(db: Any) -> Callable[..., Organization]:
    """make_organization("acme", owner=user) through the tenancy service."""

    def factory(name: str, *, owner: User) -> Organization:
        return tenancy_services.create_organization(name=name, owner=owner)

    return factory


@pytest.fixture
def make_team(db: Any) -> Callable[..., Team]:
    """make_team(org, "devs", members=[users]) through the tenancy service."""

    def factory(organization: Organization, name: str, *, members: tuple[User, ...] = ()) -> Team:
        owner = organization.memberships.filter(role="owner").first()
        actor = owner.user if owner else None
        team = tenancy_services.create_team(organization=organization, name=name, actor=actor)  # type: ignore[arg-type]
        for member in members:
            tenancy_services.add_team_member(team=team, user=member, actor=actor)  # type: ignore[arg-type]
        return team

    return factory
