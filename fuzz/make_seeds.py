#!/usr/bin/env python3
"""Write the fuzz targets' seed inputs into fuzz/seeds/TARGET/ (small valid inputs that the
fuzzer mutates from). Plain Python, no packages: PNG and BMP written by hand, templates in
the engine's format (crates/engine/src/template.rs), JSON bodies of each endpoint."""
import json, os, random, struct, zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def png(w, h, colour):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    px = 3 if colour else 1
    rows = b"".join(b"\0" + bytes(((x * 7 + y * 3 + c * 50) & 255) for x in range(w) for c in range(px)) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if colour else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def bmp(w, h):
    stride = (w * 3 + 3) & ~3
    pixels = b"".join(bytes(v for x in range(w) for v in ((x + y) & 255, (x * 2) & 255, (y * 2) & 255)) + b"\0" * (stride - w * 3) for y in range(h))
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def template(grid, planes, codes, seed):
    rng = random.Random(seed)
    rb = (grid + 7) // 8
    payload = b"".join(rng.getrandbits(grid).to_bytes(8, "little")[:rb] for _ in range(codes * 2 * planes * grid))
    head = b"OPTM" + struct.pack("<HHBBBBHI", 1, 1, grid, planes, codes, 0, 5000, len(payload))
    body = head + payload
    return body + struct.pack("<I", zlib.crc32(body))


put("decode", "grey.png", png(32, 32, False))
put("decode", "rgb.png", png(40, 33, True))
put("decode", "rgb.bmp", bmp(32, 34))
put("template", "small", template(8, 1, 1, 1))
put("template", "odd", template(17, 2, 2, 2))
put("template", "typical", template(32, 6, 3, 3))

b64 = "AAAAAAAAAAAAAAAAAAAAAA=="
capture = {"device_id": "dev_1", "nonce": b64, "timestamp": 1700000000, "purpose": "enroll",
           "enc": "A" * 43 + "=", "ciphertext": "aGVsbG8=", "signature": "A" * 86 + "=="}
put("sealed_capture", "json", b"\x00" + json.dumps(capture).encode())
put("sealed_capture", "edit", b"\x01" + bytes([5, 0, 1, 40, 0, 2]))
put("sealed_capture", "field", b"\x02\x02" + struct.pack("<q", -2**63))

bodies = [
    {"name": "Shop"},
    {"name": "k", "scopes": ["enroll", "people"]},
    {"kind": "kiosk", "site": "front", "public_key": "A" * 43 + "="},
    {"consent": {"text_version": 1, "accepted": True}, "input": "roi",
     "hands": [{"hand": "left", "captures": [capture, capture, capture]}],
     "links": [{"kind": "member_id", "value": "M-1"}]},
    {"name": "Gig", "starts_at": 1700000000, "ends_at": 1700003600, "gates": ["g1"]},
    {"tickets": [{"holder": {"pseudonymous_id": "p1"}, "ticket_type": "ga"}]},
    {"to": {"pseudonymous_id": "p2"}},
    {"input": "roi", "capture": capture},
    {"consent": {"text_version": 1, "accepted": True}, "input": "hand", "captures": [capture]},
    {"phone": "+4915112345678"},
    {"challenge_id": "c1", "code": "123456"},
    {"opted_in": True},
    {"currency": "EUR", "per_payment_limit_minor": 5000, "daily_limit_minor": 20000},
    {"kind": "phone", "value": "+4915112345678"},
    {"business_id": "biz_1", "pseudonymous_id": "p1", "verification": "passport seen"},
    {"url": "https://example.test/hook", "events": ["person.linked"]},
    {"decision": "admit", "reason": "known"},
    {"ticket_id": "t1", "note": "manual"},
    {"input": "roi", "capture": capture, "event_id": "ev1"},
    {"input": "roi", "capture": capture},
    {"method": "pin", "code": "1234"},
    {"opted_in": True},
    {"title": "10% off", "min_payments": 3, "window_days": 30},
    {"amount_minor": 1050, "currency": "EUR", "order_reference": "o-1"},
    {"amount_minor": 1050},
    {"amount_minor": 500, "reason": "returned"},
]
for i, b in enumerate(bodies):
    put("json_bodies", "body%02d" % i, bytes([i]) + json.dumps(b).encode())
