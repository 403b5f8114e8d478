#!/usr/bin/env python3
"""Helpers for scripts/api-fuzz, standard library only.

  api_fuzz_seed.py upstream PORT_FILE
      A loopback HTTP server for the fuzz run's bridge. It answers every method with a JSON echo
      of what it received (method, path, query, headers, body), so a bridge that failed to scrub
      its stored key from an upstream answer would show the canary to the caller.

  api_fuzz_seed.py seed BASE_URL UPSTREAM_URL STATE_FILE
      Signs up a real account and creates one record of each kind with recognisable canary
      values; writes what the hooks need (token, password, uuids, keys, canaries) to STATE_FILE.
"""

import json
import secrets
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)).decode("utf-8", "replace")
        echo = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body,
        }
        out = json.dumps(echo).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer

    def log_message(self, *_):
        pass


def upstream(port_file):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


def call(base, method, path, body=None, token=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"seed: {method} {path} answered {e.code}: {e.read()[:300]!r}")


def seed(base, upstream_url, state_file):
    run = secrets.token_hex(4)
    canary = lambda kind: f"canary-{kind}-{run}-{secrets.token_hex(8)}"  # noqa: E731
    email = f"fuzz-{run}@example.com"
    password = canary("account-password")
    _, signed = call(base, "POST", "/api/v1/auth/signup", {"email": email, "password": password})
    token = signed["token"]

    # value: may be shown by a legitimate read of its own record; secret: never shown except
    # by the owner's reveal (bridge URL and header); password: never shown at all.
    canaries = [{"value": password, "uuid": None, "kind": "password"}]
    records = {}

    def record(label, body, value_kind="value"):
        _, made = call(base, "POST", "/api/v1/records", body, token)
        uuid = made["record"]["uuid"]
        records[label] = {"uuid": uuid, "api_key": made.get("api_key")}
        return uuid

    def add(value, uuid, kind):
        canaries.append({"value": value, "uuid": uuid, "kind": kind})

    for access in ["public", "private", "owner_only"]:
        value = canary(access)
        uuid = record(access, {"name": f"fuzz {access}", "access": access, "data": value})
        add(value, uuid, "value")

    value, pw = canary("password-record"), canary("record-password")
    uuid = record("password", {"name": "fuzz password", "access": "private", "data": value,
                               "password": pw})
    records["password"]["password"] = pw
    add(value, uuid, "value")
    add(pw, uuid, "password")

    value = canary("sealed")
    uuid = record("sealed", {"name": "fuzz sealed", "access": "private", "data": value,
                             "sealed": True})
    add(value, uuid, "value")

    value, pw = canary("secure-page"), canary("page-password")
    uuid = record("secure_page", {
        "name": "fuzz secure page", "access": "private", "data": value, "api_key": False,
        "secure_page": {"enabled": True, "password": pw, "label": "fuzz page"}})
    records["secure_page"]["page_password"] = pw
    add(value, uuid, "value")
    add(pw, uuid, "password")

    url_secret, header_secret = canary("bridge-url"), canary("bridge-header")
    uuid = record("bridge", {
        "name": "fuzz bridge", "type": "bridge", "access": "public",
        "bridge": {"url": f"{upstream_url}/echo?key={url_secret}",
                   "headers": {"Authorization": f"Bearer {header_secret}"},
                   "allowed_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
                   "allowed_paths": ["/**"]}})
    add(url_secret, uuid, "secret")
    add(header_secret, uuid, "secret")

    ends = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = canary("handoff")
    _, handoff = call(base, "POST", "/api/v1/handoffs",
                      {"name": "fuzz handoff", "data": value, "ends_at": ends}, token)
    for uuid in json_uuids(handoff["handoff"]):
        add(value, uuid, "value")
    add(handoff["page_password"], None, "password")

    scope = [records["private"]["uuid"], records["password"]["uuid"]]
    _, service = call(base, "POST", "/api/v1/tokens",
                      {"name": "fuzz service", "records": scope, "expires_at": ends}, token)
    add(service["token"], None, "password")

    _, intake = call(base, "POST", "/api/v1/intake",
                     {"asked_for": "fuzz intake", "into": {"type": "credential"}}, token)

    state = {
        "base": base, "email": email, "password": password, "token": token,
        "records": records, "canaries": canaries,
        "handoff_id": handoff["handoff"]["id"],
        "service_token": service["token"], "service_scope": scope,
        "intake_id": intake["id"], "intake_token": intake["url"].rsplit("/", 1)[-1],
    }
    with open(state_file, "w") as f:
        json.dump(state, f, indent=1)

    # The canaries must be real: each record answers its own value to a legitimate read.
    _, read = call(base, "GET", f"/r/{records['public']['uuid']}")
    assert read["data"] == canaries[1]["value"], "the public record reads back its canary"
    _, read = call(base, "GET", f"/r/{records['private']['uuid']}",
                   headers={"X-API-Key": records["private"]["api_key"]})
    assert read["data"] == canaries[2]["value"], "the private record reads back its canary"
    print(f"seed: account {email}, {len(records)} records, {len(canaries)} canaries")


def json_uuids(handoff):
    """The record uuids a handoff view names, wherever they sit."""
    found = []

    def walk(v, key=""):
        if isinstance(v, dict):
            for k, w in v.items():
                walk(w, k)
        elif isinstance(v, list):
            for w in v:
                walk(w, key)
        elif isinstance(v, str) and key in ("uuid", "record", "page", "code") and len(v) == 36:
            found.append(v)

    walk(handoff)
    return found


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        upstream(sys.argv[2])
    elif sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)
