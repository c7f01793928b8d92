"""The caller (`me/`) and users (administrators)."""
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services as account_services
from accounts.models import User
from registry_policies.api.lookups import caller, http_request, user_named
from registry_policies.api.permissions import ManagesUsers, is_administrator
from registry_policies.api.serializers.accounts import MeSerializer, UserCreateSerializer, UserSerializer


@extend_schema(tags=["users"])
class MeView(generics.GenericAPIView[User]):
    """The caller: identity, namespace and organizations."""

    serializer_class = MeSerializer
    pagination_class = None

    def get(self, request: Request) -> Response:
        return Response(MeSerializer(caller(request)).data)


@extend_schema(tags=["users"])
class UserListCreateView(generics.ListCreateAPIView[User]):
    """Administrators list users and create them (the user's namespace comes with it)."""

    permission_classes = [IsAuthenticated, ManagesUsers]
    serializer_class = UserSerializer

    def get_queryset(self) -> Any:
        return User.objects.order_by("username")

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def post(self, request: Request) -> Response:
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = account_services.create_user(**serializer.validated_data, actor=caller(request),
                                            request=http_request(request))
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["users"])
class UserDetailView(generics.GenericAPIView[User]):
    """One user: administrators see anyone, users themselves."""

    serializer_class = UserSerializer
    pagination_class = None

    def get(self, request: Request, username: str) -> Response:
        itself = username == request.user.get_username()
        if not itself and not is_administrator(request.user, "accounts.view_user"):
            raise PermissionDenied("Only administrators can look up other users.")
        return Response(UserSerializer(user_named(username)).data)
