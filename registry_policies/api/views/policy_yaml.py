"""`/api/v1/namespaces/{ns}/policies.yaml`: every policy of a namespace as YAML (GET), or replace
them from YAML (PUT, all or nothing); see `policies.policy_yaml` and `policies.policy_import`."""
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry_policies.api.lookups import caller, http_request, namespace_for
from registry_policies.policies.policy_import import ImportFailed, import_namespace
from registry_policies.policies.policy_yaml import export_namespace

YAML_TYPE = "application/yaml; charset=utf-8"
EXAMPLE = """version: 1
namespace: dev
promotion_policies:
- scope: namespace
  repository_filter: web.*
  target_repository: qa/{name}
  tag_template: ''
  enabled: true
  rules:
  - field: tag_name
    operator: ends_with
    values:
    - -stable
pruning_policies: []
push_mirrors: []
pull_mirrors: []
"""


@extend_schema(tags=["policies"])
class NamespacePolicyYamlView(APIView):
    """Export (GET, read on the namespace) or import (PUT, admin on the namespace or
    `manage_policies`) the namespace's promotion, pruning and mirror policies as YAML."""

    @extend_schema(responses={(200, "application/yaml"): OpenApiResponse(
        OpenApiTypes.STR, examples=[OpenApiExample("A namespace policy", value=EXAMPLE)])})
    def get(self, request: Request, namespace: str) -> HttpResponse:
        found = namespace_for(request.user, namespace)
        return HttpResponse(export_namespace(user=request.user, namespace=found), content_type=YAML_TYPE)

    @extend_schema(request={"application/yaml": OpenApiTypes.STR},
                   responses={200: OpenApiTypes.OBJECT,
                              400: OpenApiResponse(OpenApiTypes.OBJECT,
                                                   description='{"errors": ["line 12: promotion_policies[1]…"]}')})
    def put(self, request: Request, namespace: str) -> Response:
        user = caller(request)
        found = namespace_for(user, namespace)
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return Response({"errors": ["line 1: the file is not UTF-8 text."]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            result = import_namespace(user=user, namespace=found, text=text, request=http_request(request))
        except ImportFailed as failed:
            return Response({"errors": failed.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"created": result.created, "updated": result.updated, "deleted": result.deleted,
                         "unchanged": result.unchanged})
