"""The scan result of a tag, and rescans (spec 8a: `…/tags/{tag}/scan/`).

A scan belongs to the manifest digest the tag points at (shared by every repository holding it).
Reading needs read access (404 otherwise); a rescan needs the write role (403 when readable).
"""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from registry_policies.api.lookups import repository_for, require_role
from registry_policies.api.serializers.scans import ScanResultSerializer
from registry_policies.api.views.tags import tag_or_404
from registry_policies.repositories.selectors import scan_result
from registry_policies.scanning.models import Scan
from registry_policies.scanning.services import rescan
from registry_policies.tenancy.access import Role


@extend_schema(tags=["scans"])
class TagScanView(generics.GenericAPIView[Scan]):
    """GET: the scan result of the tag's manifest (`status: not_scanned` before any scan).
    POST: scan it again (for an index: every image of it), answering 202 with the queued result."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_class = ScanResultSerializer
    pagination_class = None

    def get(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        repository, _role = repository_for(request.user, namespace, name)
        manifest = tag_or_404(repository, tag).manifest
        return Response(ScanResultSerializer(scan_result(manifest)).data)

    @extend_schema(request=None, responses={
        202: ScanResultSerializer,
        403: OpenApiResponse(description="Readable, but the caller lacks the write role."),
        404: OpenApiResponse(description="No such repository (for the caller) or tag."),
    })
    def post(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        repository, role = repository_for(request.user, namespace, name)
        require_role(role, Role.WRITE, "rescan its images")
        manifest = tag_or_404(repository, tag).manifest
        rescan(manifest=manifest)
        return Response(ScanResultSerializer(scan_result(manifest)).data, status=status.HTTP_202_ACCEPTED)
