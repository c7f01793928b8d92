"""Organizations and their members. An organization the caller does not belong to answers 404
(superusers see all); managing needs `can_manage_organization` (owners, superusers), else 403."""
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import caller, http_request, membership_of, organization_for, require
from registry_policies.api.serializers.tenancy import (
    MembershipSerializer,
    MembershipWriteSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
)
from registry_policies.tenancy import services as tenancy_services
from registry_policies.tenancy.access import can_manage_organization
from registry_policies.tenancy.models import Organization, OrganizationMembership
from registry_policies.tenancy.selectors import organization_members, organizations_visible_to

MANAGE_MESSAGE = "Only owners of the organization can manage it."


@extend_schema(tags=["organizations"])
class OrganizationListCreateView(generics.ListCreateAPIView[Organization]):
    """The caller's organizations (superusers: all); any user may create one and becomes its owner."""

    serializer_class = OrganizationSerializer

    def get_queryset(self) -> Any:
        return organizations_visible_to(self.request.user)

    @extend_schema(request=OrganizationCreateSerializer, responses={201: OrganizationSerializer})
    def post(self, request: Request) -> Response:
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = tenancy_services.create_organization(
            **serializer.validated_data, owner=caller(request), request=http_request(request)
        )
        organization.role = OrganizationMembership.Role.OWNER  # type: ignore[attr-defined]
        return Response(OrganizationSerializer(organization).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["organizations"])
class OrganizationDetailView(generics.GenericAPIView[Organization]):
    """One organization; DELETE removes it with its namespace, repositories and teams."""

    serializer_class = OrganizationSerializer
    pagination_class = None

    def get(self, request: Request, org: str) -> Response:
        return Response(OrganizationSerializer(organization_for(request.user, org)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, org: str) -> Response:
        organization = organization_for(request.user, org)
        require(can_manage_organization(request.user, organization), MANAGE_MESSAGE)
        tenancy_services.delete_organization(organization=organization, actor=caller(request),
                                             request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["organizations"])
class OrganizationMemberListView(generics.ListCreateAPIView[OrganizationMembership]):
    """Members of the organization with their role; POST adds a member or changes their role."""

    serializer_class = MembershipSerializer

    def get_queryset(self) -> Any:
        return organization_members(organization_for(self.request.user, self.kwargs["org"]))

    @extend_schema(request=MembershipWriteSerializer, responses={201: MembershipSerializer})
    def post(self, request: Request, org: str) -> Response:
        organization = organization_for(request.user, org)
        require(can_manage_organization(request.user, organization), MANAGE_MESSAGE)
        serializer = MembershipWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        membership = tenancy_services.set_organization_member(
            organization=organization, user=data["username"], role=data["role"], actor=caller(request),
            request=http_request(request),
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["organizations"])
class OrganizationMemberDetailView(generics.GenericAPIView[OrganizationMembership]):
    """One member; DELETE removes them from the organization and its teams (not the last owner)."""

    serializer_class = MembershipSerializer
    pagination_class = None

    def get(self, request: Request, org: str, username: str) -> Response:
        membership = membership_of(organization_for(request.user, org), username)
        return Response(MembershipSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, org: str, username: str) -> Response:
        organization = organization_for(request.user, org)
        require(can_manage_organization(request.user, organization), MANAGE_MESSAGE)
        membership = membership_of(organization, username)
        tenancy_services.remove_organization_member(organization=organization, user=membership.user,
                                                    actor=caller(request), request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
