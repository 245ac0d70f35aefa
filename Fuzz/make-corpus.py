#!/usr/bin/env python3
"""Writes the seed corpus (Fuzz/Corpus/<target>/) from the hex vectors in the test sources."""
import hashlib, os, re

here = os.path.dirname(os.path.abspath(__file__))
tests = os.path.join(here, "..", "Tests")
hexpat = re.compile(r'"([0-9A-Fa-f ]{4,})"')

def vectors(path):
    out = []
    for m in hexpat.finditer(open(path).read()):
        h = m.group(1).replace(" ", "")
        if len(h) % 2 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", h):
            out.append(bytes.fromhex(h))
    return out

apdus = vectors(os.path.join(tests, "DLMSCodecTests", "GuruxVectors.swift")) + vectors(os.path.join(tests, "DLMSCodecTests", "StandardVectorTests.swift"))
data = vectors(os.path.join(tests, "COSEMTests", "DLMSDataTests.swift"))
# The Data payload of every GET-Response-Normal carrying data is a good A-XDR seed too.
data += [a[4:] for a in apdus if a[:2] == b"\xc4\x01" and len(a) > 4 and a[3] == 0]
acse = [a for a in apdus if a[:1] in (b"\x60", b"\x61", b"\x62", b"\x63", b"\x01", b"\x08")]

def bcc(body):
    x = 0
    for b in body:
        x ^= b
    return bytes([x])

def block(text, end=b"\x03"):
    body = text.encode() + end
    return b"\x02" + body + bcc(body)

def command(head, data):
    body = head.encode() + b"\x02" + data.encode() + b"\x03"
    return b"\x01" + body + bcc(body)

# IEC 62056-21: selector 0 (parsers) and 1 (session; mode byte, address byte, then chunks).
profile = "P.01(2611250015)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n(0.250)(0.000)\r\n(0.500)(0.010)\r\n"
iec21_messages = [
    b"/EMH5\\@ED300L\r\n", b"/LGZ4ZMD3104407\r\n",
    block("F.F(00000000)\r\n1.8.1(012345.678*kWh)\r\n!\r\n"), block(profile), block(profile, end=b"\x04") + b"\x06" + block("(0.750)(0.020)\r\n"),
    block("P.01(2611242345)(00)(15)(1)(1.5.0)(kW)\r\n(1.0)\r\n(1.1)\r\nP.01(2611250000)(00)(15)(1)(1.5.0)(kW)\r\n(1.2)\r\n"),
    command("P0", "(12345678)"), b"\x06", b"\x15", block("1.8.0(001234.567*kWh)"), block("(ERROR)"),
]
iec21 = [b"\x00" + m for m in iec21_messages]
# Sessions: readout, programming, mode E; chunk sizes of 16 bytes before each piece.
for mode in (0, 1, 2):
    stream = b""
    for m in (b"/EMH5\\@ED300L\r\n", command("P0", "(12345678)"), b"\x06", block("1.8.0(001234.567*kWh)"), block(profile)):
        for i in range(0, len(m), 16):
            piece = m[i:i + 16]
            stream += bytes([len(piece) - 1]) + piece
    iec21.append(b"\x01" + bytes([mode, 1]) + stream)

# UDP wrapper datagrams (selector 0) and serial-gateway HDLC bytes (selector 1, chunks of up to 63).
wrapper = [v for v in vectors(os.path.join(tests, "DLMSLinkTests", "WrapperFrameTests.swift")) if v[:2] == b"\x00\x01"]
wrapper += [b"\x00\x01\x00\x01\x00\x10" + len(a).to_bytes(2, "big") + a for a in apdus[:40]]
hdlc = [v for f in ("HDLCFrameTests.swift", "HDLCFrameDecoderTests.swift", "HDLCConnectionTests.swift")
        for v in vectors(os.path.join(tests, "DLMSLinkTests", f)) if v[:1] == b"\x7e"]
def chunked(b):
    out = b""
    for i in range(0, len(b), 32):
        piece = b[i:i + 32]
        out += bytes([len(piece) - 1]) + piece
    return out
datagram = [b"\x00" + w for w in wrapper] + [b"\x01" + chunked(h) for h in hdlc]

# JSON the services read: the contracts (Fuzz/Seeds/*.json, checked with `hesctl contract check`),
# a configuration document and a command, each behind the selector byte of its reader.
seed_dir = os.path.join(here, "Seeds")
def seed(name):
    return open(os.path.join(seed_dir, name), "rb").read()
config_doc = (b'{"schema": "hes-configuration/v1", "regions": [{"id": "north"}], '
              b'"schedules": [{"id": "daily", "cron": "0 2 * * *", "timeZone": "Europe/Berlin"}], '
              b'"templates": [{"id": "home", "schedules": ["daily"], "defaults": {"protocol": "dlms-hdlc"}, '
              b'"objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}]}], '
              b'"lines": [{"id": "bus-1", "region": "north", "endpoint": {"kind": "gateway-udp", "host": "10.0.0.1", "port": 4001}}], '
              b'"meters": [{"id": "M0", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 16}, '
              b'{"id": "M1", "line": "bus-1", "template": "home", "hdlcPhysicalAddress": 17, "authentication": "lls", "keys": {"password": "12345678"}}]}')
# The IMS's CIM reply (61968-100 ResponseMessage) to a CIM delivery, one item rejected.
cim_reply = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ResponseMessage xmlns="http://iec.ch/TC57/2011/schema/message"><Header>'
             b'<Verb>reply</Verb><Noun>MeterReadings</Noun><Timestamp>2025-12-01T00:00:00.000Z</Timestamp><Source>ims-sim</Source>'
             b'<CorrelationID>readings-1</CorrelationID></Header><Reply><Result>PARTIAL</Result>\n<Error><code>meter.unknown</code>'
             b'<level>FATAL</level><details>meter &lt;ghost&gt; is not registered</details>'
             b'<xpath>/RequestMessage/Payload/MeterReadings/MeterReading[2]</xpath><ID kind="name" objectType="MeterReading">t2#readings</ID>'
             b'</Error></Reply></ResponseMessage>\n')
contracts = [b"\x00" + seed("seed-task.json"), b"\x01" + seed("seed-batch.json"), b"\x02" + seed("seed-result.json"),
             b"\x04" + seed("seed-reply.json"), b"\x05" + config_doc,
             b"\x06" + cim_reply,
             b"\x07" + b'{"kind": "read-profile", "meterID": "M0", "profile": "1.0.99.1.0.255", "from": "2026-12-05T00:00:00Z", "to": "2026-12-06T00:00:00Z"}']

for target, seeds in (("FuzzAPDU", apdus), ("FuzzData", data), ("FuzzACSE", acse), ("FuzzIEC21", iec21), ("FuzzDatagramInbound", datagram),
                      ("FuzzContracts", contracts)):
    d = os.path.join(here, "Corpus", target)
    os.makedirs(d, exist_ok=True)
    for s in seeds:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()[:16]), "wb") as f:
            f.write(s)
    print(target, len(os.listdir(d)))
