"""S3 XML documents and error values."""

import html
import re
import xml.etree.ElementTree as ET

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"

# HTTP status of each S3 error code the fixture produces or relays.
STATUS_OF = {
    "AccessControlListNotSupported": 400,
    "AccessDenied": 403,
    "AccessForbidden": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BadRequest": 400,
    "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IllegalVersioningConfigurationException": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidDigest": 400,
    "InvalidEncryptionAlgorithmError": 400,
    "InvalidObjectState": 403,
    "InvalidPart": 400,
    "InvalidPolicyDocument": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "InvalidStorageClass": 400,
    "InvalidTag": 400,
    "InvalidToken": 400,
    "InvalidURI": 400,
    "KeyTooLongError": 400,
    "MalformedPOSTRequest": 400,
    "MalformedXML": 400,
    "MaxPostPreDataLengthExceeded": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "MissingSecurityHeader": 400,
    "NoSuchBucket": 404,
    "NoSuchCORSConfiguration": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NoSuchVersion": 404,
    "NotImplemented": 501,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "SlowDown": 503,
    "XAmzContentSHA256Mismatch": 400,
}


class S3Error(Exception):
    """An S3 error response: code, message and extra <Error> fields."""

    def __init__(self, code, message, status=None, **details):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status or STATUS_OF.get(code, 500)
        self.details = details
        self.headers = []  # extra response headers, e.g. x-amz-delete-marker

    def with_headers(self, headers):
        self.headers = list(headers)
        return self


def no_such_key(key):
    return S3Error("NoSuchKey", "The specified key does not exist.", Key=key)


def build(root_tag, children, namespace=True):
    """Serialise a document given as nested (tag, value) pairs.

    A value is a str/int/bool (text), a list of pairs (child elements) or
    None (element left out).
    """
    root = ET.Element(root_tag)
    if namespace:
        root.set("xmlns", NAMESPACE)
    _fill(root, children)
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode("utf-8")


def _fill(parent, children):
    for tag, value in children:
        if value is None:
            continue
        element = ET.SubElement(parent, tag)
        if isinstance(value, list):
            _fill(element, value)
        elif isinstance(value, bool):
            element.text = "true" if value else "false"
        else:
            element.text = str(value)


def error_document(error, request_id, host_id):
    fields = [("Code", error.code), ("Message", error.message)]
    fields += [(k, v) for k, v in error.details.items()]
    fields += [("RequestId", request_id), ("HostId", host_id)]
    return build("Error", fields, namespace=False)


def parse(body):
    """Parse an XML request/response body, dropping namespaces."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise S3Error(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate "
            "against our published schema.",
        ) from exc
    for element in root.iter():
        if "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def upstream_error(body):
    """(code, message) from an s3rver error body.

    s3rver escapes text with HTML named entities (e.g. &uuml;), which is not
    valid XML, so this reads the two fields with a regex instead.
    """
    text = body.decode("utf-8", "replace")
    code = re.search(r"<Code>(.*?)</Code>", text, re.S)
    message = re.search(r"<Message>(.*?)</Message>", text, re.S)
    return (
        html.unescape(code.group(1)) if code else None,
        html.unescape(message.group(1)) if message else "",
    )
