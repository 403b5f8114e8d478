"""schemathesis hooks for scripts/api-fuzz (loaded through SCHEMATHESIS_HOOKS).

- Signs every request in as the seeded account (and signs in again when the fuzzer ended that
  session: logout, ending a session, changing the password).
- Points some generated `{uuid}`, `{id}` and `{token}` path parameters at the seeded records,
  handoff and intake link, and gives reads of a seeded record its own X-API-Key, so the fuzzer
  reaches real records rather than only 404s.
- Sends half the posts to the secure page and the intake page from the page's own form (its
  cookie and hidden token, fetched first), so the fuzzer gets past the cross-site check to the
  password and value handling; half of those secure-page posts carry the right password.
- Adds the check `no_canary_leak`: no seeded canary in any response body or header, except a
  record's value in a successful read of that record by a channel meant to show it.
"""

import base64
import itertools
import json
import os
import re
import threading
import zlib
from urllib.parse import quote, urlencode

import requests
import schemathesis
from hypothesis import strategies as st

STATE = json.load(open(os.environ["API_FUZZ_STATE"]))
BASE = STATE["base"]
RECORD_UUIDS = sorted({r["uuid"] for r in STATE["records"].values()} |
                      {c["uuid"] for c in STATE["canaries"] if c["uuid"]})
KEYS = {r["uuid"]: r["api_key"] for r in STATE["records"].values() if r.get("api_key")}
PASSWORDS = {r["uuid"]: r["password"] for r in STATE["records"].values() if r.get("password")}

# Channels that show a record's value to someone entitled to it: the reader with its key or
# password, the owner's reveal, the secure page after its password. Bridge secrets (URL,
# headers) are shown only by the owner's reveal: a bridge call must scrub them.
VALUE_READS = {("GET", "/r/{uuid}"), ("POST", "/r/{uuid}"), ("POST", "/secure/{uuid}"),
               ("GET", "/api/v1/records/{uuid}/value")}
SECRET_READS = {("GET", "/api/v1/records/{uuid}/value")}


class Session:
    """The seeded account's bearer token, renewed when the fuzzer ends its session."""

    lock = threading.Lock()
    token = STATE["token"]

    @classmethod
    def throwaway(cls):
        """A session of its own for a logout to end, so the run's session lives on."""
        res = requests.post(f"{BASE}/api/v1/auth/login", timeout=60,
                            json={"email": STATE["email"], "password": STATE["password"]})
        return res.json()["token"] if res.status_code == 200 else cls.token

    @classmethod
    def renew_if_ended(cls):
        with cls.lock:
            res = requests.get(f"{BASE}/api/v1/account",
                               headers={"Authorization": f"Bearer {cls.token}"}, timeout=30)
            if res.status_code != 401:
                return
            res = requests.post(f"{BASE}/api/v1/auth/login", timeout=60,
                                json={"email": STATE["email"], "password": STATE["password"]})
            if res.status_code == 200:
                cls.token = res.json()["token"]


@schemathesis.auth(refresh_interval=None)
class Bearer:
    def get(self, case, ctx):
        return Session.token

    def set(self, case, data, ctx):
        # Only operations that take a bearer token get one; /r and /batch carry X-API-Keys.
        if case.operation.path.startswith("/api/"):
            if case.operation.path == "/api/v1/auth/logout":
                data = Session.throwaway()
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"


SESSION_ENDERS = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/account/sessions/{id}"),
                  ("POST", "/api/v1/account/password")}


@schemathesis.hook
def after_call(context, case, response):
    if (case.method.upper(), case.operation.path) in SESSION_ENDERS and response.status_code < 300:
        Session.renew_if_ended()


def seeded(name, values):
    """Keep the generated value, or use one of the seeded ones."""
    return lambda params: st.one_of(
        st.just(params),
        st.sampled_from(values).map(lambda v: {**params, name: v}),
    )


PATH_SEEDS = {
    "uuid": RECORD_UUIDS,
    "token": [STATE["intake_token"]],
}
ID_SEEDS = {
    "/api/v1/handoffs/": [STATE["handoff_id"]],
    "/api/v1/intake/": [STATE["intake_id"]],
}


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    path = context.operation.path
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    for name, values in PATH_SEEDS.items():
        if name in path_parameters:
            return seeded(name, values)(path_parameters)
    if "id" in path_parameters:
        for prefix, values in ID_SEEDS.items():
            if path.startswith(prefix):
                return seeded("id", values)(path_parameters)
    return st.just(path_parameters)


@schemathesis.hook
def map_case(context, case):
    """Reads of seeded records carry their key (or password) half the time; batch items too."""
    path = case.operation.path
    headers = case.headers or {}
    if path == "/api/v1/service-token" and "X-API-Key" not in headers and coin(case.query):
        case.headers = {**headers, "X-API-Key": STATE["service_token"]}
    if path == "/r/{uuid}" and case.path_parameters:
        uuid = case.path_parameters.get("uuid")
        if uuid in KEYS and "X-API-Key" not in headers and coin(case.query):
            key = KEYS[uuid]
            if uuid in STATE["service_scope"] and coin(key + repr(case.query)):
                key = STATE["service_token"]
            case.headers = {**headers, "X-API-Key": key}
        if (case.method.upper() == "POST" and uuid in PASSWORDS and isinstance(case.body, dict)
                and "password" in case.body):
            case.body = {**case.body, "password": PASSWORDS[uuid]}
    if path in FORM_PAGES and case.method.upper() == "POST" and coin(case.body):
        through_the_page(case)
    if path == "/batch" and isinstance(case.body, dict) and isinstance(case.body.get("requests"), list):
        items = []
        for item in case.body["requests"]:
            if isinstance(item, dict) and coin(item):
                uuid = RECORD_UUIDS[zlib.crc32(repr(item).encode()) % len(RECORD_UUIDS)]
                item = {**item, "uuid": uuid}
                if uuid in KEYS and isinstance(item.get("headers"), dict):
                    item["headers"] = {**item["headers"], "X-API-Key": KEYS[uuid]}
            items.append(item)
        case.body = {**case.body, "requests": items}
    return case


# Pages whose form posts need the form's cookie and hidden token, and their path parameter.
FORM_PAGES = {"/secure/{uuid}": "uuid", "/intake/{token}": "token"}
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]*)"')


def through_the_page(case):
    """Makes a form post come from the page: loads it, then posts with the cookie the page set
    and the token of its form. The generated body becomes the password (secure page) or the
    value (intake page); a seeded record's secure page gets its right password half the time."""
    name = FORM_PAGES[case.operation.path]
    param = str((case.path_parameters or {}).get(name, ""))
    url = BASE + case.operation.path.replace("{" + name + "}", quote(param, safe=""))
    page = requests.get(url, timeout=30)
    token = FORM_TOKEN.search(page.text)
    cookie = page.headers.get("set-cookie", "").split(";")[0]
    if page.status_code != 200 or not token or "=" not in cookie:
        return
    text = case.body if isinstance(case.body, str) else ""
    if name == "uuid":
        right = PASSWORDS.get(param)
        fields = {"password": right if right and coin(text) else text}
    else:
        fields = {"value": text, "password": text}
    fields["form_token"] = token.group(1)
    case.body = urlencode(fields)
    cookie_name, cookie_value = cookie.split("=", 1)
    case.cookies = {**(case.cookies or {}), cookie_name: cookie_value}


TOSSES = itertools.count()


def coin(value):
    """Heads every other time, mixed with the case's content (hash() changes from run to run,
    and a case's query alone is usually empty)."""
    return (zlib.crc32(repr(value).encode()) + next(TOSSES)) % 2 == 0


def needles(value):
    return {value, base64.b64encode(value.encode()).decode()}


def allowed(case, status, canary, uuid_of_answer):
    """Whether this answer may show this canary (one value may belong to several records)."""
    if canary["kind"] == "password" or not 200 <= status < 300:
        return False
    if uuid_of_answer != canary["uuid"]:
        return False
    op = (case.method.upper(), case.operation.path)
    if canary["kind"] == "secret":
        return op in SECRET_READS
    return op in VALUE_READS or op == ("POST", "/batch")


def leaked(case, status, uuid, text):
    """The first canary in `text` that this answer may not show, or None."""
    for canary in STATE["canaries"]:
        if not any(n in text for n in needles(canary["value"])):
            continue
        owners = [c for c in STATE["canaries"] if c["value"] == canary["value"]]
        if not any(allowed(case, status, c, uuid) for c in owners):
            return canary
    return None


@schemathesis.check
def no_canary_leak(ctx, response, case):
    """No seeded secret in a response, except a value read through its own record's channel."""
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    body = response.content.decode("utf-8", "replace") if response.content else ""
    parts = [(response.status_code, (case.path_parameters or {}).get("uuid"), headers)]
    if case.operation.path == "/batch" and response.status_code == 200:
        # Judge each item on its own: an item is a read of its own record.
        try:
            for item in json.loads(body)["results"]:
                parts.append((item["status"], item["uuid"], json.dumps(item)))
        except (ValueError, KeyError, TypeError):
            parts.append((response.status_code, None, body))
    else:
        parts.append((response.status_code, (case.path_parameters or {}).get("uuid"), body))
    for status, uuid, text in parts:
        canary = leaked(case, status, uuid, text)
        if canary:
            raise AssertionError(
                f"canary of kind {canary['kind']} (record {canary['uuid']}) in a "
                f"{status} answer of {case.method.upper()} {case.operation.path}")
