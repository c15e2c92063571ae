#!/usr/bin/python3
"""Peer for bench/s3_transfer.sh: boto3 with one client.

    s3_transfer_boto3.py small ENDPOINT BUCKET ACCESS SECRET REGION PREFIX COUNT FILE
        COUNT put_object calls of FILE's bytes as PREFIX<i>.bin (i = 1..COUNT),
        then COUNT get_object calls reading each body; prints
        "put_seconds", "get_seconds".
    s3_transfer_boto3.py large ENDPOINT BUCKET ACCESS SECRET REGION PREFIX FILE PART_SIZE CONCURRENCY
        FILE's bytes (read into memory before the clock starts) as
        PREFIX-transfer.bin with upload_fileobj, read back with
        download_fileobj (s3transfer: multipart upload and ranged GETs,
        TransferConfig with multipart_threshold = multipart_chunksize =
        PART_SIZE, max_concurrency = CONCURRENCY, threads), then as
        PREFIX-single.bin with one put_object, read back with one
        get_object; prints "transfer_put_seconds", "transfer_get_seconds",
        "single_put_seconds", "single_get_seconds".

Debian's /usr/bin/python3 and python3-boto3; BOTO_DISABLE_CRT=true is set
before botocore is imported (pure-Python signer, no CRT transfer manager).
The client is created before the clock starts; its first connection is
timed. Every body read back is compared with what was written.
"""
import hashlib
import io
import os
import sys
import time

os.environ["BOTO_DISABLE_CRT"] = "true"

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402


def client(endpoint, access, secret, region, pool):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      max_pool_connections=pool),
    )


def small(endpoint, bucket, access, secret, region, prefix, count, path):
    with open(path, "rb") as f:
        body = f.read()
    s3 = client(endpoint, access, secret, region, 10)
    keys = ["%s%d.bin" % (prefix, i) for i in range(1, int(count) + 1)]
    t0 = time.perf_counter()
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    t1 = time.perf_counter()
    wrong = 0
    for key in keys:
        if s3.get_object(Bucket=bucket, Key=key)["Body"].read() != body:
            wrong += 1
    t2 = time.perf_counter()
    if wrong:
        raise SystemExit("boto3: %d objects read back differ" % wrong)
    print("put_seconds %.6f" % (t1 - t0))
    print("get_seconds %.6f" % (t2 - t1))


def large(endpoint, bucket, access, secret, region, prefix, path, part_size, concurrency):
    with open(path, "rb") as f:
        body = f.read()
    digest = hashlib.md5(body).digest()
    part_size, concurrency = int(part_size), int(concurrency)
    s3 = client(endpoint, access, secret, region, max(10, concurrency))
    config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                            max_concurrency=concurrency, use_threads=True)

    t0 = time.perf_counter()
    s3.upload_fileobj(io.BytesIO(body), bucket, prefix + "-transfer.bin", Config=config)
    t1 = time.perf_counter()
    out = io.BytesIO()
    s3.download_fileobj(bucket, prefix + "-transfer.bin", out, Config=config)
    t2 = time.perf_counter()
    if hashlib.md5(out.getvalue()).digest() != digest:
        raise SystemExit("boto3: download_fileobj read back other bytes")
    del out

    t3 = time.perf_counter()
    s3.put_object(Bucket=bucket, Key=prefix + "-single.bin", Body=body)
    t4 = time.perf_counter()
    data = s3.get_object(Bucket=bucket, Key=prefix + "-single.bin")["Body"].read()
    t5 = time.perf_counter()
    if hashlib.md5(data).digest() != digest:
        raise SystemExit("boto3: get_object read back other bytes")
    print("transfer_put_seconds %.6f" % (t1 - t0))
    print("transfer_get_seconds %.6f" % (t2 - t1))
    print("single_put_seconds %.6f" % (t4 - t3))
    print("single_get_seconds %.6f" % (t5 - t4))


def main(argv):
    if len(argv) == 10 and argv[1] == "small":
        small(*argv[2:])
    elif len(argv) == 11 and argv[1] == "large":
        large(*argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
