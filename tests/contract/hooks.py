"""schemathesis hooks for the API contract test (tests/contract.rs loads this file through the
SCHEMATHESIS_HOOKS environment variable).

schemathesis draws header values that shrink towards the same few strings (`0`, `null`), so
without help most writes reuse an Idempotency-Key and come back 422 (the key was used with
another request) before reaching the use case; and it draws the same email, coupon code and
external id again and again, so creates come back 409 (duplicate). Before each request this
gives a well-formed request a fresh key, and a well-formed email, coupon code or external id a
unique prefix.
Requests that are meant to be malformed (schemathesis's negative cases, or a key that breaks
the documented pattern) are sent as drawn.

After each response it appends `METHOD PATH STATUS` (the path as the OpenAPI document names
it) to the file named by SUBSAVE_CONTRACT_STATUSES, which the test reads to show, and to
require, 2xx responses from every write operation.
"""

import itertools
import os
import re
import threading
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation

# The documented Idempotency-Key: 1-255 visible ASCII characters.
KEY = re.compile(r"^[!-~]{1,255}$")
# A coupon code as the API takes it.
CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# The shape of an email address the API takes (core::model::Email): a local part of at most
# 64 characters without spaces, an @, and a domain with a dot.
EMAIL = re.compile(r"^([^@\s]{1,64})@([^@\s]+\.[^@\s]+)$")

_lock = threading.Lock()
_serial = itertools.count(1)
_run = uuid.uuid4().hex[:6]


def _unique() -> str:
    """A prefix no other request of this run gets."""
    return f"{_run}{next(_serial)}"


def _negative(case, location) -> bool:
    meta = case.meta
    return meta is not None and meta.is_negative_at(location)


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.headers is not None and not _negative(case, ParameterLocation.HEADER):
        key = case.headers.get("Idempotency-Key")
        if isinstance(key, str) and KEY.match(key):
            case.headers["Idempotency-Key"] = f"contract-{uuid.uuid4()}"
    if case.operation.method.upper() not in ("POST", "PATCH"):
        return
    body = case.body
    if not isinstance(body, dict) or _negative(case, ParameterLocation.BODY):
        return
    email = body.get("email")
    if isinstance(email, str):
        match = EMAIL.match(email.strip())
        local = match and f"{_unique()}.{match.group(1)}"
        if match and len(local) <= 64:
            body["email"] = f"{local}@{match.group(2)}"
    external_id = body.get("external_id")
    if isinstance(external_id, str) and external_id and external_id == external_id.strip():
        body["external_id"] = f"{_unique()}{external_id}"[:255]
    code = body.get("code")
    if case.operation.path == "/v1/coupons" and isinstance(code, str) and CODE.match(code):
        body["code"] = f"{_unique()}{code}"[:32]


@schemathesis.hook
def after_call(context, case, response):
    path = os.environ.get("SUBSAVE_CONTRACT_STATUSES")
    if not path:
        return
    line = f"{case.operation.method.upper()} {case.operation.path} {response.status_code}\n"
    with _lock, open(path, "a", encoding="utf-8") as statuses:
        statuses.write(line)
