"""Cross-origin resource sharing, evaluated as S3 does.

S3 User Guide "Using cross-origin resource sharing (CORS)" (how S3 picks
a rule), "CORS configuration" (the elements and their wildcards) and
"Troubleshooting CORS"; API reference PutBucketCors, GetBucketCors,
DeleteBucketCors.  s3rver has a CORS layer of its own, but it checks the
requested headers only against the first rule matching origin and method,
always answers "Access-Control-Allow-Origin: *" to preflights and has no
DeleteBucketCors; the proxy therefore keeps the configuration in the
bucket's sidecar (cors.json) and answers everything itself.

A preflight OPTIONS needs no signature (a browser cannot sign it).  Other
requests carrying an Origin header get the response headers of the first
rule that allows that origin and the request's method.
"""

import re
from dataclasses import dataclass, field

from . import s3xml
from .s3xml import S3Error

METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
MAX_ID_LENGTH = 255
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
# S3's own wording, typos included ("evalution", "Requet"), so clients
# that match on it see what they would see from AWS.
NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is "
               "usually because the evalution of Origin, request method / "
               "Access-Control-Request-Method or Access-Control-Requet-"
               "Headers are not whitelisted by the resource's CORS spec.")
NOT_ENABLED = "CORSResponse: CORS is not enabled for this bucket."
_RULE_ELEMENTS = ("ID", "AllowedOrigin", "AllowedMethod", "AllowedHeader",
                  "ExposeHeader", "MaxAgeSeconds")


@dataclass
class Rule:
    origins: list
    methods: list
    headers: list = field(default_factory=list)  # AllowedHeader patterns
    expose: list = field(default_factory=list)
    max_age: int = None
    rule_id: str = None

    def to_json(self):
        doc = {"origins": self.origins, "methods": self.methods}
        for name in ("headers", "expose", "max_age", "rule_id"):
            if getattr(self, name) not in (None, []):
                doc[name] = getattr(self, name)
        return doc

    @classmethod
    def from_json(cls, doc):
        return cls(doc["origins"], doc["methods"], doc.get("headers", []),
                   doc.get("expose", []), doc.get("max_age"),
                   doc.get("rule_id"))

    def matching_origin(self, origin):
        """The AllowedOrigin that admits origin (scheme, host and port
        compared as text, "*" at most once), or None."""
        return next((o for o in self.origins if _wildcard(o, origin)), None)

    def allows_headers(self, requested):
        """Every requested header must match an AllowedHeader; header
        names are case-insensitive."""
        return all(any(_wildcard(p.lower(), h) for p in self.headers)
                   for h in requested)

    def response_headers(self, origin, allowed_origin):
        headers = [("Access-Control-Allow-Origin",
                    "*" if allowed_origin == "*" else origin),
                   ("Access-Control-Allow-Methods", ", ".join(self.methods))]
        if self.expose:
            headers.append(("Access-Control-Expose-Headers",
                            ", ".join(self.expose)))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        if allowed_origin != "*":
            # A credentialed request may not see "*", so S3 echoes the
            # origin and allows credentials.
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers


def _wildcard(pattern, text):
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == text
    return len(text) >= len(head) + len(tail) and \
        text.startswith(head) and text.endswith(tail)


# -- the configuration (PutBucketCors / GetBucketCors) -------------------


def parse_configuration(body):
    """[Rule] of a CORSConfiguration document; S3's errors otherwise."""
    root = s3xml.parse(body)
    rules = root.findall("CORSRule")
    if root.tag != "CORSConfiguration" or not rules or \
            len(rules) > MAX_RULES or len(rules) != len(root):
        raise _malformed()
    return [_parse_rule(element) for element in rules]


def _parse_rule(element):
    values = {name: [] for name in _RULE_ELEMENTS}
    for child in element:
        if child.tag not in values or len(child):
            raise _malformed()
        values[child.tag].append((child.text or "").strip())
    if not values["AllowedOrigin"] or not values["AllowedMethod"] or \
            len(values["MaxAgeSeconds"]) > 1 or len(values["ID"]) > 1:
        raise _malformed()
    for method in values["AllowedMethod"]:
        if method not in METHODS:
            raise S3Error("InvalidRequest", "Found unsupported HTTP method "
                          "in CORS config. Unsupported method is " + method)
    for kind in ("AllowedOrigin", "AllowedHeader"):
        for pattern in values[kind]:
            if pattern.count("*") > 1:
                raise S3Error("InvalidRequest", f'{kind} "{pattern}" can not '
                              "have more than one wildcard.")
    max_age = None
    if values["MaxAgeSeconds"]:
        if not re.fullmatch(r"-?\d{1,10}", values["MaxAgeSeconds"][0]):
            raise _malformed()
        max_age = int(values["MaxAgeSeconds"][0])
    rule_id = values["ID"][0] if values["ID"] else None
    if rule_id is not None and len(rule_id) > MAX_ID_LENGTH:
        raise S3Error("InvalidArgument", "The ID of a CORS rule can be at "
                      f"most {MAX_ID_LENGTH} characters long.",
                      ArgumentName="ID", ArgumentValue=rule_id)
    return Rule(values["AllowedOrigin"], values["AllowedMethod"],
                values["AllowedHeader"], values["ExposeHeader"], max_age,
                rule_id)


def configuration_document(rules):
    return s3xml.build("CORSConfiguration", [("CORSRule", [
        ("ID", rule.rule_id)] +
        [("AllowedHeader", h) for h in rule.headers] +
        [("AllowedMethod", m) for m in rule.methods] +
        [("AllowedOrigin", o) for o in rule.origins] +
        [("ExposeHeader", h) for h in rule.expose] +
        [("MaxAgeSeconds", rule.max_age)]) for rule in rules])


def no_configuration(bucket):
    return S3Error("NoSuchCORSConfiguration", "The CORS configuration does "
                   "not exist", BucketName=bucket)


def _malformed():
    return S3Error("MalformedXML", "The XML you provided was not well-formed "
                   "or did not validate against our published schema.")


class Cors:
    """The CORS rules of each bucket, kept in its sidecar."""

    def __init__(self, sidecar):
        self.sidecar = sidecar

    def rules(self, bucket):
        doc = self.sidecar.cors(bucket)
        return None if doc is None else [Rule.from_json(r) for r in doc]

    def set_rules(self, bucket, rules):
        self.sidecar.set_cors(bucket, [r.to_json() for r in rules])

    def remove(self, bucket):
        self.sidecar.remove_cors(bucket)

    # -- evaluating requests -------------------------------------------

    def preflight(self, req):
        """Response headers for an allowed OPTIONS preflight; raises
        S3's error otherwise."""
        origin = req.header("origin")
        method = req.header("access-control-request-method")
        if not origin:
            raise S3Error("BadRequest", "Insufficient information. Origin "
                          "request header needed.")
        if method not in METHODS:
            # S3 is written in Java: a missing header is "null".
            raise S3Error("BadRequest", "Invalid Access-Control-Request-"
                          f"Method: {'null' if method is None else method}")
        requested = [h.strip().lower() for h in (req.header(
            "access-control-request-headers") or "").split(",") if h.strip()]
        rules = self.rules(req.bucket)
        if rules is None:
            raise S3Error("AccessForbidden", NOT_ENABLED,
                          Method=method, ResourceType="BUCKET")
        for rule in rules:
            allowed_origin = rule.matching_origin(origin)
            if allowed_origin is not None and method in rule.methods and \
                    rule.allows_headers(requested):
                headers = rule.response_headers(origin, allowed_origin)
                if requested:
                    # Only the requested headers, as S3 answers.
                    headers.insert(2, ("Access-Control-Allow-Headers",
                                       ", ".join(requested)))
                return headers + [("Vary", VARY)]
        raise S3Error("AccessForbidden", NOT_ALLOWED,
                      Method=method,
                      ResourceType="OBJECT" if req.key else "BUCKET")

    def actual_headers(self, bucket, origin, method):
        """Headers S3 adds to a non-preflight request from origin (also
        to its error answers); [] when no rule allows it."""
        rules = self.rules(bucket) or []
        for rule in rules:
            allowed_origin = rule.matching_origin(origin)
            if allowed_origin is not None and method in rule.methods:
                return rule.response_headers(origin, allowed_origin) + [
                    ("Vary", VARY)]
        return []
