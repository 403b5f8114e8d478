#!/usr/bin/env python3
"""Writes the tiny MaxMind DB (.mmdb) that brine's tests use as a GeoIP database.

    python3 scripts/make-geoip-fixture.py crates/cli/tests/fixtures/geoip-test.mmdb

Plain Python 3, standard library only, so the fixture can be rebuilt anywhere. The output is
byte-for-byte the same on every run (fixed build_epoch, fixed order), so a rebuilt fixture shows
no diff unless this script changed.

What it holds (a GeoLite2-City-shaped record per network, English names only):

    127.0.0.0/8  -> NZ "New Zealand", city "Wellington"
    ::1/128      -> IS "Iceland" (no city)
    198.51.100.0/24 -> FR "France", city "Paris" (a documentation range, for unit tests)

Format (https://maxmind.github.io/MaxMind-DB/): a binary search tree over the 128 bits of an
IPv6 address (IPv4 addresses live under ::/96), 24-bit records; then 16 zero bytes; then the
data section; then the marker "\\xAB\\xCD\\xEFMaxMind.com" and the metadata map.
"""

import ipaddress
import struct
import sys

NETWORKS = [
    ("127.0.0.0/8", {"iso_code": "NZ", "country": "New Zealand", "city": "Wellington"}),
    ("::1/128", {"iso_code": "IS", "country": "Iceland"}),
    ("198.51.100.0/24", {"iso_code": "FR", "country": "France", "city": "Paris"}),
]

RECORD_SIZE = 24
BUILD_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z, fixed so that output never changes


# --- data section encoding ---------------------------------------------------------------

def control(type_number, size):
    """The control byte(s) of a field: 3 bits of type (or 0 + an extended type byte), 5 of size."""
    if size < 29:
        size_bits, extra = size, b""
    elif size < 29 + 256:
        size_bits, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        size_bits, extra = 30, struct.pack(">H", size - 285)
    else:
        size_bits, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_number <= 7:
        return bytes([(type_number << 5) | size_bits]) + extra
    return bytes([size_bits, type_number - 7]) + extra


def encode(value):
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return control(2, len(raw)) + raw
    if isinstance(value, dict):
        out = control(7, len(value))
        for key, item in value.items():
            out += encode(key) + encode(item)
        return out
    if isinstance(value, list):
        out = control(11, len(value))
        for item in value:
            out += encode(item)
        return out
    if isinstance(value, tuple):  # ("uint16" | "uint32" | "uint64", n)
        kind, n = value
        type_number = {"uint16": 5, "uint32": 6, "uint64": 9}[kind]
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
        return control(type_number, len(raw)) + raw
    raise TypeError(f"cannot encode {value!r}")


def city_record(place):
    record = {
        "country": {
            "iso_code": place["iso_code"],
            "names": {"en": place["country"]},
        }
    }
    if "city" in place:
        record["city"] = {"names": {"en": place["city"]}}
    return record


# --- search tree -------------------------------------------------------------------------

class Node:
    def __init__(self):
        self.children = [None, None]  # None (no data), a Node, or ("data", offset)


def bits_of(network):
    """The network's prefix as 128 bits (IPv4 under ::/96, as the format places it)."""
    if network.version == 4:
        address = int(network.network_address)
        length = 96 + network.prefixlen
    else:
        address = int(network.network_address)
        length = network.prefixlen
    return [(address >> (127 - i)) & 1 for i in range(length)]


def insert(root, bits, leaf):
    node = root
    for bit in bits[:-1]:
        child = node.children[bit]
        if child is None:
            child = node.children[bit] = Node()
        if not isinstance(child, Node):
            raise ValueError("overlapping networks are not supported")
        node = child
    if node.children[bits[-1]] is not None:
        raise ValueError("overlapping networks are not supported")
    node.children[bits[-1]] = leaf


def number_nodes(root):
    """Breadth-first numbering; the root is node 0."""
    order, queue = [], [root]
    while queue:
        node = queue.pop(0)
        node.number = len(order)
        order.append(node)
        queue.extend(c for c in node.children if isinstance(c, Node))
    return order


def build(networks):
    data = b""
    root = Node()
    for cidr, place in networks:
        offset = len(data)
        data += encode(city_record(place))
        insert(root, bits_of(ipaddress.ip_network(cidr)), ("data", offset))
    nodes = number_nodes(root)
    node_count = len(nodes)

    def record_value(child):
        if child is None:
            return node_count
        if isinstance(child, Node):
            return child.number
        return node_count + 16 + child[1]

    tree = b""
    for node in nodes:
        for child in node.children:
            tree += record_value(child).to_bytes(3, "big")

    metadata = {
        "binary_format_major_version": ("uint16", 2),
        "binary_format_minor_version": ("uint16", 0),
        "build_epoch": ("uint64", BUILD_EPOCH),
        "database_type": "brine-Test-City",
        "description": {"en": "brine test fixture: made by scripts/make-geoip-fixture.py"},
        "ip_version": ("uint16", 6),
        "languages": ["en"],
        "node_count": ("uint32", node_count),
        "record_size": ("uint16", RECORD_SIZE),
    }
    return tree + bytes(16) + data + b"\xab\xcd\xefMaxMind.com" + encode(metadata)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-geoip-fixture.py OUTPUT.mmdb")
    with open(sys.argv[1], "wb") as out:
        out.write(build(NETWORKS))


if __name__ == "__main__":
    main()
