#!/usr/bin/python3
"""Peer for bench/s3_sign.sh: boto3's generate_presigned_url.

    sign_boto3.py ENDPOINT BUCKET ACCESS_KEY SECRET_KEY REGION COUNT EXPIRES

Run with Debian's /usr/bin/python3 (python3-boto3). botocore's pure-Python
signer is used: BOTO_DISABLE_CRT=true is set before botocore is imported,
since Debian's python3-awscrt would otherwise swap in the CRT signer
silently; the signer class in use is printed. One client (created before
the clock starts), path-style addressing, SigV4. Key i (1..COUNT) is
"photos/<i>/photo <i>.jpg", as in the other peers; keys are prepared before
the clock starts. Prints "rate", "seconds", "signer" and "sample" lines.
"""
import os
import sys
import time

os.environ["BOTO_DISABLE_CRT"] = "true"

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
from botocore.config import Config  # noqa: E402


def main(argv):
    if len(argv) != 8:
        sys.stderr.write(__doc__)
        return 2
    endpoint, bucket, access_key, secret_key, region = argv[1:6]
    count, expires = int(argv[6]), int(argv[7])
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    keys = ["photos/%d/photo %d.jpg" % (i, i) for i in range(1, count + 1)]
    sign = client.generate_presigned_url
    sample = sign("get_object", Params={"Bucket": bucket, "Key": keys[0]}, ExpiresIn=expires)

    t0 = time.perf_counter()
    total = 0
    for key in keys:
        total += len(sign("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires))
    seconds = time.perf_counter() - t0

    query_auth = botocore.auth.AUTH_TYPE_MAPS["s3v4-query"]
    print("rate %.0f" % (count / seconds))
    print("seconds %.6f" % seconds)
    print("bytes %d" % total)
    print("signer %s.%s" % (query_auth.__module__, query_auth.__name__))
    print("sample %s" % sample)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
