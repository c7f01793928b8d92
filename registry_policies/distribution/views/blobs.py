"""`/v2/<name>/blobs/<digest>` (GET with Range, HEAD, DELETE) and the upload endpoints
`/v2/<name>/blobs/uploads/` (POST: session, monolithic or mount) and
`/v2/<name>/blobs/uploads/<uuid>` (GET status, PATCH, PUT, DELETE).

Downloads from the filesystem are a FileResponse on the open file, which
gunicorn sends with sendfile (a Range is an offset and a length on the same
file); S3 downloads stream or redirect to a presigned URL.
"""
from __future__ import annotations

import logging
import re
import uuid

from django.db import connection
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase

from registry_policies.core import metrics
from registry_policies.distribution import uploads
from registry_policies.distribution.access import Caller, may, require
from registry_policies.distribution.errors import RegistryError, registry_endpoint
from registry_policies.distribution.models import BlobUpload
from registry_policies.distribution.names import check_digest, parse_name
from registry_policies.distribution.upload_slots import upload_slot
from registry_policies.distribution.views.common import (
    find_mount_ends,
    name_unknown,
    repository_exists,
    repository_for_push,
    repository_or_unknown,
)
from registry_policies.repositories import content
from registry_policies.repositories.models import Blob, Repository, RepositoryBlob
from registry_policies.storage import get_blob_store
from registry_policies.tenancy.models import Namespace

logger = logging.getLogger(__name__)
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$")


# Every layer a client pulls, or checks before pushing (HEAD), starts with this lookup: one indexed
# query written out (compiling it with the ORM costs more than running it). Table names come from
# the models; every value is a bound parameter.
_BLOB_SIZE = (f"SELECT b.size FROM {RepositoryBlob._meta.db_table} l "  # noqa: S608
              f"JOIN {Blob._meta.db_table} b ON b.id = l.blob_id "
              f"JOIN {Repository._meta.db_table} r ON r.id = l.repository_id "
              f"JOIN {Namespace._meta.db_table} n ON n.id = r.namespace_id "
              "WHERE n.name = %s AND r.name = %s AND b.digest = %s")


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single `Range: bytes=a-b` (or suffix `-n`); None for no range;
    416 when unsatisfiable."""
    match = RANGE_RE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    if not match[1]:
        length = int(match[2])
        start, end = max(size - length, 0), size - 1
    else:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    if start >= size or start > end:
        raise RegistryError("BLOB_UNKNOWN", "requested range not satisfiable", status=416,
                            headers={"Content-Range": f"bytes */{size}"}, detail={"size": size})
    return start, end


def _download(request: HttpRequest, name: str, digest: str) -> HttpResponseBase:
    namespace, repository = parse_name(name)
    check_digest(digest)
    require(request, name, "pull")
    with connection.cursor() as cursor:
        cursor.execute(_BLOB_SIZE, [namespace, repository, digest])
        row = cursor.fetchone()
    size = None if row is None else int(row[0])
    if size is None:
        if not repository_exists(namespace, repository):
            raise name_unknown(name)
        raise RegistryError("BLOB_UNKNOWN", f"blob unknown to repository: {digest}", detail={"digest": digest})
    headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Accept-Ranges": "bytes",
               "Cache-Control": "max-age=31536000"}
    if request.method == "HEAD":
        response = HttpResponse(content_type="application/octet-stream")
        response["Content-Length"] = str(size)
        for key, value in headers.items():
            response[key] = value
        return response
    store = get_blob_store()
    url = store.download_url(digest)
    if url:
        redirect = HttpResponseRedirect(url, status=307)
        redirect["Docker-Content-Digest"] = digest
        return redirect
    wanted = _byte_range(request.META.get("HTTP_RANGE", ""), size) if size else None
    start, length = (wanted[0], wanted[1] - wanted[0] + 1) if wanted else (0, size)
    try:
        handle = store.open(digest, start=start, length=length if wanted else None)
    except FileNotFoundError:
        logger.error("blob %s is linked but missing from the store", digest)
        raise RegistryError("BLOB_UNKNOWN", f"blob unknown to registry: {digest}", detail={"digest": digest})
    download = FileResponse(handle, content_type="application/octet-stream", status=206 if wanted else 200)
    download.block_size = 1024 * 1024  # when not sent with sendfile (S3 streams, other servers)
    download["Content-Length"] = str(length)
    metrics.add_bytes(direction="download", count=length)
    if wanted:
        download["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
    for key, value in headers.items():
        download[key] = value
    return download


@registry_endpoint
def blob(request: HttpRequest, name: str, digest: str) -> HttpResponseBase:
    if request.method in ("GET", "HEAD"):
        return _download(request, name, digest)
    if request.method == "DELETE":
        parse_name(name)
        check_digest(digest)
        require(request, name, "delete")
        repository = repository_or_unknown(name)
        if not content.unlink_blob(repository=repository, digest=digest):
            raise RegistryError("BLOB_UNKNOWN", f"blob unknown to repository: {digest}", detail={"digest": digest})
        return HttpResponse(status=202)
    raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on blobs")


def _upload_response(name: str, upload: BlobUpload, offset: int, status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Location"] = f"/v2/{name}/blobs/uploads/{upload.pk}"
    response["Range"] = f"0-{max(offset - 1, 0)}"
    response["Docker-Upload-UUID"] = str(upload.pk)
    response["Content-Length"] = "0"
    return response


def _created(name: str, digest: str) -> HttpResponse:
    response = HttpResponse(status=201)
    response["Location"] = f"/v2/{name}/blobs/{digest}"
    response["Docker-Content-Digest"] = digest
    response["Content-Length"] = "0"
    return response


@registry_endpoint
def start_upload(request: HttpRequest, name: str) -> HttpResponse:
    """POST: `?mount=&from=` mounts from a repository the caller can read (else falls back to a
    session), `?digest=` stores the body as the whole blob, otherwise a session starts."""
    if request.method != "POST":
        raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on uploads")
    parse_name(name)
    caller = require(request, name, "push")
    mount, source_name = request.GET.get("mount"), request.GET.get("from")
    if mount and source_name:
        check_digest(mount)
        if _mount(caller, name, source_name, mount):
            return _created(name, mount)
    repository = repository_for_push(caller, name)
    if "digest" in request.GET and not (mount and source_name):
        with upload_slot(request=request, user_id=caller.user_id):
            blob = uploads.monolithic_upload(repository=repository, request=request, digest=request.GET["digest"])
        return _created(name, blob.digest)
    upload = uploads.start_upload(repository=repository, actor=caller.user())
    return _upload_response(name, upload, 0, 202)


def _mount(caller: Caller, name: str, source_name: str, digest: str) -> bool:
    """Link `digest` from `source_name` into `name` if the caller may read the source and it holds
    the blob: two queries for the usual mount into an existing repository (both ends, then the link).
    A missing destination is created first; a pull-mirrored one is refused (DENIED)."""
    destination, source = find_mount_ends(name, source_name)
    if source is None or not may(caller, source_name, "pull"):
        return False
    if destination is None or destination.pull_mirrored:
        destination_id = repository_for_push(caller, name).pk
    else:
        destination_id = destination.id
    return content.mount_blob(repository_id=destination_id, source_id=source.id, digest=digest)


def _session(name: str, upload_id: str) -> BlobUpload:
    namespace, repository = parse_name(name)
    try:
        key = uuid.UUID(upload_id)
    except ValueError:
        key = None
    upload = BlobUpload.objects.select_related("repository__namespace").filter(
        pk=key, repository__namespace__name=namespace, repository__name=repository).first() if key else None
    if upload is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", detail={"uuid": upload_id})
    return upload


def _content_range(request: HttpRequest) -> tuple[int, int] | None:
    header = request.META.get("HTTP_CONTENT_RANGE", "").strip()
    if not header:
        return None
    match = CONTENT_RANGE_RE.match(header)
    if not match or int(match[2]) < int(match[1]):
        raise RegistryError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {header!r}", status=416,
                            detail={"Content-Range": header})
    return int(match[1]), int(match[2])


@registry_endpoint
def upload_session(request: HttpRequest, name: str, upload_id: str) -> HttpResponse:
    parse_name(name)
    caller = require(request, name, "push")
    upload = _session(name, upload_id)
    if request.method == "GET":
        return _upload_response(name, upload, uploads.upload_size(upload), 204)
    if request.method == "PATCH":
        with upload_slot(request=request, user_id=caller.user_id):
            offset = uploads.append_chunk(upload=upload, request=request, content_range=_content_range(request))
        return _upload_response(name, upload, offset, 202)
    if request.method == "PUT":
        with upload_slot(request=request, user_id=caller.user_id):
            blob = uploads.finish_upload(upload=upload, request=request, digest=request.GET.get("digest"))
        return _created(name, blob.digest)
    if request.method == "DELETE":
        uploads.cancel_upload(upload=upload)
        return HttpResponse(status=204)
    raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on upload sessions")
