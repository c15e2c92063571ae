#!/usr/bin/python3
"""botocore's answers for the SigV4 cases of tests/unit/sigv4_test.cpp.

Reads one JSON object per line on stdin and prints one line per case:

  mode "presign": the URL of boto3's generate_presigned_url (signature
      version s3v4, the given endpoint and addressing style);
  mode "headers": Authorization, X-Amz-Date, X-Amz-Content-SHA256 and
      X-Amz-Security-Token (empty when none), tab-separated, from
      botocore.auth.S3SigV4Auth on a request built with botocore's own
      encoders;
  mode "raw": the signature of a request whose headers are taken exactly
      as given (the AWS documentation examples, which sign Date and
      x-amz-date together, something add_auth never does).

A case that botocore refuses prints "ERROR: ..." so the lines stay aligned.
Run with Debian's /usr/bin/python3: BOTO_DISABLE_CRT=true is forced here so
python3-awscrt cannot swap in its CRT signer, and botocore's clock is pinned
per case by replacing `datetime` as botocore.auth sees it.
"""
import os

os.environ["BOTO_DISABLE_CRT"] = "true"

import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.compat  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.utils import percent_encode, percent_encode_sequence  # noqa: E402

assert not botocore.compat.HAS_CRT, "the CRT signer must be disabled"

# --- pinned clock -----------------------------------------------------------

_now = datetime.datetime(2000, 1, 1)


class _PinnedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):  # what botocore.auth asks for the signing time
        return _now


botocore.auth.datetime = types.SimpleNamespace(datetime=_PinnedDatetime)


def pin_clock(unix_seconds):
    global _now
    _now = _PinnedDatetime(1970, 1, 1) + datetime.timedelta(seconds=unix_seconds)


# --- presigned URLs through boto3 --------------------------------------------

# Query parameter of the URL -> boto3 parameter that produces it.
QUERY_TO_PARAM = {
    "response-cache-control": "ResponseCacheControl",
    "response-content-disposition": "ResponseContentDisposition",
    "response-content-encoding": "ResponseContentEncoding",
    "response-content-language": "ResponseContentLanguage",
    "response-content-type": "ResponseContentType",
    "versionId": "VersionId",
    "partNumber": "PartNumber",
    "uploadId": "UploadId",
}

_clients = {}


def client_for(case):
    token = case.get("token") or None
    config_key = (case["access_key"], case["secret"], token, case["region"],
                  case["endpoint"], case["style"])
    if config_key not in _clients:
        session = boto3.session.Session(
            aws_access_key_id=case["access_key"],
            aws_secret_access_key=case["secret"],
            aws_session_token=token,
            region_name=case["region"],
        )
        style = "virtual" if case["style"] == "virtual" else "path"
        _clients[config_key] = session.client(
            "s3",
            endpoint_url=case["endpoint"],
            config=Config(signature_version="s3v4", s3={"addressing_style": style}),
        )
    return _clients[config_key]


def operation_for(method, query_names):
    if method == "GET":
        return "get_object"
    if method == "HEAD":
        return "head_object"
    if method == "DELETE":
        return "delete_object"
    if method == "PUT":
        return "upload_part" if "uploadId" in query_names else "put_object"
    raise ValueError(f"no S3 operation for method {method}")


def presign(case):
    # Parameters in the order of case["query"]: botocore keeps that order.
    params = {"Bucket": case["bucket"], "Key": case["key"]}
    for name, value in case.get("query", []):
        param = QUERY_TO_PARAM[name]
        params[param] = int(value) if param == "PartNumber" else value
    operation = operation_for(case["method"], [name for name, _ in case.get("query", [])])
    return client_for(case).generate_presigned_url(
        operation, Params=params, ExpiresIn=case["expires"])


# --- header signing through botocore.auth ------------------------------------

def request_url(case):
    """The URL botocore's serializer and prepare_request_dict would build."""
    endpoint = urlsplit(case["endpoint"])
    bucket = percent_encode(case["bucket"])
    key = percent_encode(case["key"], safe="/~")
    if case["style"] == "virtual":
        url = f"{endpoint.scheme}://{case['bucket']}.{endpoint.netloc}/{key}"
    else:
        url = f"{endpoint.scheme}://{endpoint.netloc}/{bucket}"
        if case["key"]:
            url += f"/{key}"
    if case.get("query"):
        url += "?" + percent_encode_sequence([tuple(p) for p in case["query"]])
    return url


def build_request(case):
    request = AWSRequest(method=case["method"], url=request_url(case))
    for name, value in case.get("headers", []):
        request.headers[name] = value  # appends: repeated names stay repeated
    if case.get("body") is not None:
        request.data = case["body"].encode("utf-8")
    return request


def sign_headers(case):
    credentials = Credentials(case["access_key"], case["secret"], case.get("token") or None)
    signer = botocore.auth.S3SigV4Auth(credentials, "s3", case["region"])
    request = build_request(case)
    if case.get("body") is None:
        # An unhashed body: what S3 clients send for streamed uploads.
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer.add_auth(request)
    h = request.headers
    return "\t".join([h["Authorization"], h["X-Amz-Date"], h["X-Amz-Content-SHA256"],
                      h.get("X-Amz-Security-Token", "")])


def sign_raw(case):
    credentials = Credentials(case["access_key"], case["secret"], case.get("token") or None)
    signer = botocore.auth.S3SigV4Auth(credentials, "s3", case["region"])
    request = build_request(case)
    request.context["timestamp"] = _now.strftime("%Y%m%dT%H%M%SZ")
    canonical_request = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical_request), request)


MODES = {"presign": presign, "headers": sign_headers, "raw": sign_raw}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        pin_clock(case["time"])
        try:
            answer = MODES[case["mode"]](case)
        except Exception as error:  # one refused case must not hide the others
            answer = f"ERROR: {type(error).__name__}: {error}".replace("\n", " ")
        print(answer)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
