"""The caller's personal access tokens."""
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services as account_services
from accounts.authentication import BY_TOKEN
from accounts.models import PersonalAccessToken
from registry_policies.api.lookups import caller, http_request
from registry_policies.api.serializers.accounts import (
    TokenCreatedSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)


@extend_schema(tags=["tokens"])
class TokenListCreateView(generics.ListCreateAPIView[PersonalAccessToken]):
    """List the caller's tokens (never their secrets) or create one (its secret shown once). Creating
    needs the password (Basic) or a session: a personal access token cannot create tokens (403)."""

    serializer_class = TokenSerializer

    def get_queryset(self) -> Any:
        return PersonalAccessToken.objects.filter(user=caller(self.request)).order_by("-created_at", "-id")

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer})
    def post(self, request: Request) -> Response:
        if request.auth == BY_TOKEN:  # a leaked token must not be able to mint longer-lived ones
            raise PermissionDenied("A personal access token cannot create tokens: authenticate with your "
                                   "password (Basic) or sign in to the web pages.")
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = account_services.create_token(user=caller(request), **serializer.validated_data,
                                                      request=http_request(request))
        token.token = secret  # type: ignore[attr-defined]
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["tokens"])
class TokenDetailView(generics.GenericAPIView[PersonalAccessToken]):
    """One of the caller's tokens; DELETE revokes it. Another user's token does not exist (404)."""

    serializer_class = TokenSerializer
    pagination_class = None

    def get_object(self) -> PersonalAccessToken:
        token = PersonalAccessToken.objects.filter(user=caller(self.request), pk=self.kwargs["pk"]).first()
        if token is None:
            raise NotFound()
        return token

    def get(self, request: Request, pk: int) -> Response:
        return Response(TokenSerializer(self.get_object()).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        account_services.revoke_token(token=self.get_object(), actor=caller(request),
                                      request=http_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
