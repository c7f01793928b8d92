"""Blobs in S3-compatible object storage (`BLOB_STORAGE_URL=s3://bucket[/prefix]?endpoint_url=…`).

Query parameters: `endpoint_url` (MinIO, Ceph, moto…), `region`, `redirect=true`
(answer blob GETs with a presigned URL instead of streaming through us),
`addressing_style` (`path` by default when an endpoint is given).
Credentials come from the usual boto3 chain (AWS_ACCESS_KEY_ID…).

Uploads are spooled to a local staging directory (`REGISTRY_DATA_DIR/uploads`)
and sent with a multipart upload streamed from that file once verified; a
PUT to S3 is atomic, so a reader never sees a partial blob. Note that a
chunked upload session lives on the node that holds its staging file.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlparse

from registry_policies.storage.base import CHUNK_SIZE, SUPPORTED_ALGORITHMS, blob_key

MULTIPART_CHUNK = 64 * 1024 * 1024
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
