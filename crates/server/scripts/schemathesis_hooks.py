"""Schemathesis hooks for crates/server/scripts/schemathesis.sh.

A client sends a new Idempotency-Key with each new request (a key used again with another
request is refused with 422, as the IETF draft asks). Schemathesis reuses the values it
drew, so a well-formed key is replaced by a fresh one before each call; malformed keys are
left as generated, to check that they are refused.
"""
import re
import uuid

import schemathesis

_VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and _VALID_KEY.match(headers[name]):
            headers[name] = str(uuid.uuid4())
