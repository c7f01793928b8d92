"""Blobs in S3-compatible object storage (`BLOB_STORAGE_URL=s3://bucket[/prefix]?endpoint_url=…`).

Query parameters: `endpoint_url` (MinIO, Ceph, moto…), `region`, `redirect=true`
(answer blob GETs with a presigned URL instead of streaming through us),
`addressing_style` (`path` by default when an endpoint is given).
Credentials come from the usual boto3 chain (AWS_ACCESS_KEY_ID…).

Upload sessions are staged in the bucket, so any node can continue one: the
bytes of each PATCH become parts of an S3 multipart upload at
`_uploads/<id>/data` as they arrive (PART_SIZE each; a remainder smaller than
S3's 5 MiB minimum part is kept as a small `_uploads/<id>/tail-…` object and
prepended to the next PATCH, or sent as the last part). The part list lives in
the session's database row. At completion the multipart upload is completed
(atomic: a reader sees the whole object or nothing) and copied server-side to
the content-addressed key. Files from other sources (pull mirrors) are still
spooled to a local directory (`REGISTRY_DATA_DIR/uploads`) and `ingest`ed.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlparse

from registry_policies.storage.base import (
    CHUNK_SIZE,
    SUPPORTED_ALGORITHMS,
    StagingLost,
    StagingState,
    blob_key,
    new_hasher,
)

MULTIPART_CHUNK = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
PARTS_IN_FLIGHT = 2
_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchUpload")
PRESIGN_SECONDS = 600
CHECK_TIMEOUT_SECONDS = 2


class StreamingBodyReader:
    """A read-only file object over a botocore StreamingBody (no seek/tell, so Django does not probe it)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        return bytes(self._body.read(None if size is None or size < 0 else size))

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> StreamingBodyReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class S3BlobStore:
    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, redirect: bool = False, addressing_style: str | None = None,
                 staging_dir: Path) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.redirect = redirect
        self.staging_dir = Path(staging_dir)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        style = addressing_style or ("path" if endpoint_url else "auto")
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            config=Config(s3={"addressing_style": style}, retries={"max_attempts": 5, "mode": "standard"}),
        )
        # Readiness asks once, briefly: no retries, short timeouts.
        self.check_client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            config=Config(s3={"addressing_style": style}, retries={"max_attempts": 1, "mode": "standard"},
                          connect_timeout=CHECK_TIMEOUT_SECONDS, read_timeout=CHECK_TIMEOUT_SECONDS),
        )

    @classmethod
    def from_url(cls, url: str, *, staging_dir: Path) -> S3BlobStore:
        parsed = urlparse(url)
        params = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        return cls(bucket=parsed.netloc, prefix=parsed.path, endpoint_url=params.get("endpoint_url"),
                   region=params.get("region"), redirect=params.get("redirect", "").lower() in ("1", "true", "yes"),
                   addressing_style=params.get("addressing_style"), staging_dir=staging_dir)

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def key(self, digest: str) -> str:
        return f"{self.prefix}blobs/{blob_key(digest)}"

    def size(self, digest: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, digest: str) -> bool:
        return self.size(digest) is not None

    def ingest(self, path: Path, digest: str) -> bool:
        from boto3.s3.transfer import TransferConfig

        try:
            if self.exists(digest):
                return False
            config = TransferConfig(multipart_threshold=MULTIPART_CHUNK, multipart_chunksize=MULTIPART_CHUNK,
                                    max_concurrency=4, io_chunksize=CHUNK_SIZE)
            self.client.upload_file(str(path), self.bucket, self.key(digest), Config=config,
                                    ExtraArgs={"ContentType": "application/octet-stream"})
            return True
        finally:
            path.unlink(missing_ok=True)

    # -- upload staging (the StagingStore protocol) --

    def _staging_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}_uploads/{upload_id}/"

    def stage_start(self, upload_id: str) -> StagingState:
        return {"mpu": None, "parts": [], "tail": None, "tail_size": 0}

    def _read_tail(self, state: StagingState, upload_id: str) -> bytearray:
        from botocore.exceptions import ClientError

        if not state.get("tail"):
            return bytearray()
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=state["tail"])["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise StagingLost(upload_id) from error
            raise
        if len(body) != state["tail_size"]:
            raise StagingLost(upload_id)
        return bytearray(body)

    def _upload_part(self, upload_id: str, state: StagingState, data: bytes) -> None:
        """Send `data` as the next part (synchronously)."""
        self._create_mpu(upload_id, state)
        state["parts"] = [*state["parts"], self._send_part(upload_id, state["mpu"], len(state["parts"]) + 1, data)]

    def _create_mpu(self, upload_id: str, state: StagingState) -> None:
        if not state.get("mpu"):
            state["mpu"] = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._staging_prefix(upload_id) + "data",
                ContentType="application/octet-stream")["UploadId"]

    def _send_part(self, upload_id: str, mpu: str, number: int, data: bytes) -> list[Any]:
        from botocore.exceptions import ClientError

        try:
            etag = self.client.upload_part(Bucket=self.bucket, Key=self._staging_prefix(upload_id) + "data",
                                           UploadId=mpu, PartNumber=number, Body=data)["ETag"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise StagingLost(upload_id) from error
            raise
        return [number, etag, len(data)]

    def stage_append(self, upload_id: str, state: StagingState, *, offset: int,
                     chunks: Iterable[bytes | memoryview]) -> tuple[StagingState, int]:
        """Parts are sent by a helper thread while the next one is read from the client (at most
        PARTS_IN_FLIGHT being sent, so memory stays bounded)."""
        if state.get("object"):
            raise StagingLost(upload_id)  # already completed for hashing: nothing may be added
        state = {**state, "parts": list(state.get("parts", []))}
        buffer = self._read_tail(state, upload_id)
        written = 0
        pending: list[Future[list[Any]]] = []

        def send(data: bytes) -> None:
            self._create_mpu(upload_id, state)
            while len(pending) >= PARTS_IN_FLIGHT:
                state["parts"].append(pending.pop(0).result())
            number = len(state["parts"]) + len(pending) + 1
            pending.append(pool.submit(self._send_part, upload_id, state["mpu"], number, data))

        with ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="s3-part") as pool:
            try:
                for chunk in chunks:
                    buffer += chunk
                    written += len(chunk)
                    if len(buffer) >= PART_SIZE:
                        send(bytes(buffer[:PART_SIZE]))
                        del buffer[:PART_SIZE]
                if len(buffer) >= MIN_PART_SIZE:
                    send(bytes(buffer))
                    buffer = bytearray()
                state["parts"].extend(future.result() for future in list(pending))
                pending.clear()
            finally:
                for future in pending:
                    future.cancel()
        if buffer:  # a new name each time: the recorded tail stays intact if this request fails
            tail = f"{self._staging_prefix(upload_id)}tail-{secrets.token_hex(8)}"
            self.client.put_object(Bucket=self.bucket, Key=tail, Body=bytes(buffer))
            state.update(tail=tail, tail_size=len(buffer))
        else:
            state.update(tail=None, tail_size=0)
        return state, written

    def _complete(self, upload_id: str, state: StagingState) -> StagingState:
        """Turn the staged parts into one object (`object`: its key, None for no bytes)."""
        from botocore.exceptions import ClientError

        if "object" in state:
            return state
        if not state.get("mpu"):
            return {"object": state.get("tail")}
        state = {**state, "parts": list(state["parts"])}
        if state.get("tail"):
            self._upload_part(upload_id, state, bytes(self._read_tail(state, upload_id)))
        key = self._staging_prefix(upload_id) + "data"
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=state["mpu"],
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in state["parts"]]})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise StagingLost(upload_id) from error
            raise
        return {"object": key}

    def stage_digest(self, upload_id: str, state: StagingState, *, size: int,
                     algorithm: str) -> tuple[str, StagingState]:
        state = self._complete(upload_id, state)
        hasher = new_hasher(algorithm)
        seen = 0
        if state["object"]:
            body = self.client.get_object(Bucket=self.bucket, Key=state["object"])["Body"]
            while chunk := body.read(CHUNK_SIZE * 4):
                hasher.update(chunk)
                seen += len(chunk)
        if seen != size:
            raise StagingLost(upload_id)
        return f"{algorithm}:{hasher.hexdigest()}", state

    def stage_commit(self, upload_id: str, state: StagingState, *, size: int, digest: str) -> bool:
        from boto3.s3.transfer import TransferConfig

        try:
            if self.exists(digest):
                return False
            state = self._complete(upload_id, state)
            if not state["object"]:
                self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=b"")
                return True
            config = TransferConfig(multipart_threshold=MULTIPART_CHUNK * 64, multipart_chunksize=MULTIPART_CHUNK * 4,
                                    max_concurrency=4)  # one CopyObject up to 4 GiB, parallel part copies beyond
            self.client.copy({"Bucket": self.bucket, "Key": state["object"]}, self.bucket, self.key(digest),
                             Config=config)
            return True
        finally:
            self.stage_discard(upload_id, state)

    def stage_discard(self, upload_id: str, state: StagingState) -> None:
        from botocore.exceptions import ClientError

        prefix = self._staging_prefix(upload_id)
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix).get("Uploads", [])
        for upload in uploads:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in _MISSING:
                    raise
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def put_bytes(self, data: bytes, digest: str) -> None:
        if not self.exists(digest):
            self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=data)

    def open(self, digest: str, *, start: int = 0, length: int | None = None) -> IO[bytes]:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(digest)}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            kwargs["Range"] = f"bytes={start}-{end}"
        try:
            response = self.client.get_object(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(digest) from error
            raise
        return StreamingBodyReader(response["Body"])  # type: ignore[return-value]

    def download_url(self, digest: str) -> str | None:
        if not self.redirect:
            return None
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(digest)}, ExpiresIn=PRESIGN_SECONDS))

    def delete(self, digest: str) -> bool:
        existed = self.exists(digest)
        self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        return existed

    def check(self) -> None:
        """HEAD the bucket: reachable, credentials accepted, bucket present."""
        self.check_client.head_bucket(Bucket=self.bucket)

    def iter_digests(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
            for item in page.get("Contents", []):
                parts = item["Key"][len(self.prefix) + len("blobs/"):].split("/")
                if len(parts) == 3 and parts[0] in SUPPORTED_ALGORITHMS:
                    yield f"{parts[0]}:{parts[2]}"
