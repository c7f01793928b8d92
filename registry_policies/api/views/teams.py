"""Teams of an organization and their members. Visible to the organization's members; managing
needs `can_manage_organization` (owners, superusers)."""
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from registry_policies.api.lookups import caller, http_request, organization_for, require, team_for
from registry_policies.api.serializers.tenancy import (
    TeamCreateSerializer,
    TeamMemberSerializer,
    TeamSerializer,
)
from registry_policies.api.views.organizations import MANAGE_MESSAGE
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.access import can_manage_organization
from registry_policies.tenancy.models import Organization, Team
from registry_policies.tenancy.selectors import team_members


def _managed_organization(request: Request, org: str) -> Organization:
    organization = organization_for(request.user, org)
    require(can_manage_organization(request.user, organization), MANAGE_MESSAGE)
    return organization


@extend_schema(tags=["organizations"])
class TeamListCreateView(generics.ListCreateAPIView[Team]):
    """The organization's teams; POST creates one."""

    serializer_class = TeamSerializer

    def get_queryset(self) -> Any:
        organization = organization_for(self.request.user, self.kwargs["org"])
        return organization.teams.select_related("organization").order_by("name")

    @extend_schema(request=TeamCreateSerializer, responses={201: TeamSerializer})
    def post(self, request: Request, org: str) -> Response:
        organization = _managed_organization(request, org)
        serializer = TeamCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        team = tenancy_services.create_team(organization=organization, **serializer.validated_data,
                                            actor=caller(request), request=http_request(request))
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["organizations"])
class TeamDetailView(generics.GenericAPIView[Team]):
    """One team; DELETE removes it with its grants."""

    serializer_class = TeamSerializer
    pagination_class = None

    def get(self, request: Request, org: str, team: str) -> Response:
        return Response(TeamSerializer(team_for(organization_for(request.user, org), team)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, org: str, team: str) -> Response:
        found = team_for(_managed_organization(request, org), team)
        tenancy_services.delete_team(team=found, actor=caller(request), request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["organizations"])
class TeamMemberListView(generics.ListCreateAPIView[User]):
    """The team's members; POST adds a user (who becomes an organization member if needed)."""

    serializer_class = TeamMemberSerializer

    def get_queryset(self) -> Any:
        organization = organization_for(self.request.user, self.kwargs["org"])
        return team_members(team_for(organization, self.kwargs["team"]))

    @extend_schema(request=TeamMemberSerializer, responses={201: TeamMemberSerializer})
    def post(self, request: Request, org: str, team: str) -> Response:
        found = team_for(_managed_organization(request, org), team)
        serializer = TeamMemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user: Any = serializer.validated_data["username"]
        tenancy_services.add_team_member(team=found, user=user, actor=caller(request),
                                         request=http_request(request))
        return Response(TeamMemberSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["organizations"])
class TeamMemberDetailView(generics.GenericAPIView[User]):
    """One member of the team; DELETE removes them from the team (not from the organization)."""

    serializer_class = TeamMemberSerializer
    pagination_class = None

    def _member(self, found: Team, username: str) -> User:
        member = team_members(found).filter(username=username).first()
        if member is None:
            raise NotFound()
        return member

    def get(self, request: Request, org: str, team: str, username: str) -> Response:
        found = team_for(organization_for(request.user, org), team)
        return Response(TeamMemberSerializer(self._member(found, username)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, org: str, team: str, username: str) -> Response:
        found = team_for(_managed_organization(request, org), team)
        member = self._member(found, username)
        tenancy_services.remove_team_member(team=found, user=member, actor=caller(request),
                                            request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
