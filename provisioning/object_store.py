"""The backup bucket from the platform's side (boto3): read a backup's manifest, delete its objects.

The backup Jobs write the objects (deploy/backup/store-backup.sh); the platform never trusts a Job's
word for what it wrote: it reads the manifest back and computes its checksum itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from provisioning.backup_jobs import BucketCredentials


class BucketUnreachable(Exception):
    """The object store did not answer (connection refused, DNS, timeout)."""


class ObjectMissing(Exception):
    """The object is not in the bucket."""


@dataclass(frozen=True)
class Manifest:
    sha256: str  # of the manifest itself, which lists every part's sha256
    size_bytes: int  # of all parts
    engine: str
    parts: dict[str, str]  # part -> sha256


def _client(credentials: BucketCredentials) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=credentials.endpoint,
        region_name=credentials.region,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        # Path style: an S3-compatible store on a private host has no per-bucket DNS names.
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def manifest_read(credentials: BucketCredentials, *, prefix: str) -> Manifest:
    """The backup's manifest under `prefix`; ObjectMissing or BucketUnreachable otherwise."""
    try:
        body = (
            _client(credentials)
            .get_object(Bucket=credentials.bucket, Key=f"{prefix}/manifest")["Body"]
            .read()
        )
    except EndpointConnectionError as exc:
        raise BucketUnreachable(str(exc)) from exc
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise ObjectMissing(f"{prefix}/manifest") from exc
        raise
    except BotoCoreError as exc:
        raise BucketUnreachable(str(exc)) from exc
    engine, parts, size = "", {}, 0
    for line in body.decode().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "engine":
            engine = fields[1]
        elif len(fields) == 3:
            parts[fields[0]] = fields[1]
            size += int(fields[2])
    return Manifest(sha256=hashlib.sha256(body).hexdigest(), size_bytes=size, engine=engine, parts=parts)


def prefix_delete(credentials: BucketCredentials, *, prefix: str) -> int:
    """Delete every object under `prefix/`; returns how many went. Gone already is fine."""
    s3 = _client(credentials)
    deleted = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=credentials.bucket, Prefix=f"{prefix}/"
        ):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=credentials.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
    except (EndpointConnectionError, BotoCoreError) as exc:
        raise BucketUnreachable(str(exc)) from exc
    return deleted
