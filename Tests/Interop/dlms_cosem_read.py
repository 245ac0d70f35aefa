#!/usr/bin/env python3
"""Reads a DLMS/COSEM meter over TCP with dlms-cosem's DlmsClient (dlms-cosem 25.1.0), an HLS-GMAC,
suite 0 authenticated-and-encrypted association, and prints ONE JSON document on stdout in
gurux_read.py's format.

    python dlms_cosem_read.py --host 127.0.0.1 --port 4061 [--framing wrapper|hdlc]
                              [--client 1] [--server 1] [--physical 16] [--timeout 10]
                              [--system-title HEX] [--block-cipher-key HEX] [--auth-key HEX]
                              [--invocation-counter N | --invocation-counter-from-meter]
                              [--counter-client 16] [--counter-object 0.0.43.1.0.255]
                              [--register OBIS ...] [--profile OBIS --from ISO --to ISO] [-v]
    python dlms_cosem_read.py --check-framing

dlms-cosem as shipped: DlmsClient(authentication=HighLevelSecurityGmacAuthentication(),
encryption_key, authentication_key, security_suite=0, client_system_title) over TcpTransport
(wrapper) or HdlcTransport, both on BlockingTcpIO; HDLC frames are read by their length (see
LengthFramedHdlcTransport: as shipped, a frame whose FCS ends in 0x7E stalls the client). It
ciphers the AARQ's InitiateRequest (glo-initiate-request) and every xDLMS request as
general-glo-ciphering (tag 0xDB, with the client system title) and deciphers only
general-glo-ciphering answers; its HLS-GMAC challenge is 32 bytes and its f(StoC) carries the
invocation counter of the ACTION that transports it.

--invocation-counter-from-meter first opens an unciphered association as the public client
(--counter-client, 16) on its own connection, reads the invocation counter data object
(--counter-object, attribute 2) and then starts at counter + 1.

Output (numbers raw; times ISO 8601 UTC):
    {"invocationCounter":41,"serverSystemTitle":"5357482A1CE34863",
     "clock":"2026-11-26T20:00:00Z",
     "registers":{"1.0.1.8.0.255":{"raw":9837200,"scaler":0,"unit":30},...},
     "profile":{"columns":["0.0.1.0.0.255/2",...],"rows":[["2026-11-26T00:15:00Z",9837153,5902293,0],...]}}
The profile is read by range (selector 1, restricting 0.0.1.0.0.255/2, all columns; dlms-cosem
encodes the dates with deviation 0 for UTC).

--check-framing needs no meter: it feeds the HDLC transport built here, through an in-memory
stream, frames made by dlms-cosem's own encoder with 0x7E in the HCS, the data and either FCS byte,
and prints one line per frame; exit 0 when every one arrived intact.

Exit status: 0 ok; 2 association refused (AARE rejected, or HLS failed); 3 timeout / connection
error; 4 a read failed; 1 anything else. The reason is printed on stderr as
"dlms_cosem_read: <step>: <message>".
"""
import argparse
import datetime
import json
import logging
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gurux_meter import decode_cosem_datetime, iso, parse_iso  # noqa: E402  (pure helpers, no Gurux)

import structlog  # noqa: E402
from dlms_cosem import cosem, enumerations, exceptions, utils  # noqa: E402
from dlms_cosem.client import DlmsClient, HLSError, DataResultError  # noqa: E402
from dlms_cosem.cosem.capture_object import CaptureObject  # noqa: E402
from dlms_cosem.cosem.selective_access import RangeDescriptor  # noqa: E402
from dlms_cosem.hdlc import address as hdlc_address, connection as hdlc_connection, frames as hdlc_frames  # noqa: E402
from dlms_cosem.io import BlockingTcpIO, HdlcTransport, TcpTransport  # noqa: E402
from dlms_cosem.security import HighLevelSecurityGmacAuthentication, NoSecurityAuthentication  # noqa: E402

UTC = datetime.timezone.utc
CLOCK = cosem.CosemAttribute(enumerations.CosemInterface.CLOCK, cosem.Obis(0, 0, 1, 0, 0, 255), 2)


class Failure(Exception):
    def __init__(self, code, step, message):
        super().__init__(message)
        self.code, self.step, self.message = code, step, message


def obis(text):
    return cosem.Obis(*[int(p) for p in text.split(".")])


# MARK: - HDLC frames by length
#
# DLMS HDLC has no byte stuffing (IEC 62056-46 §6.4): 0x7E occurs inside frames, and a frame ends
# where the length in its format field says. dlms-cosem 25.1.0 delimits frames by flags instead:
# HdlcTransport.recv_frame reads up to the next 0x7E, and a read that returns the flag alone is
# taken for an opening flag and continued to the next 0x7E; HdlcConnection._find_frame cuts its
# buffer at the first 0x7E after the opening flag and, when that does not parse, moves on by one
# 0x7E per recv_frame() call. Two 0x7E in a row inside a frame thus make the client read one chunk
# more than the frame holds: when the FCS's high byte (the byte before the closing flag) is 0x7E,
# or the data holds 7E 7E, the client waits for bytes the meter never sends, as the meter waits
# for the client's next request, and fails with "Could not receive data: timed out" after
# --timeout. About one frame in 256 ends in 7E 7E; the AARE and the HLS answer carry random
# challenges and ciphered answers change with their counters, so any step may stall. Both are
# replaced here by reads that follow the length.

FLAG = hdlc_frames.HDLC_FLAG[0]
LLC_RESPONSE = b"\xe6\xe7\x00"


def frame_length(format_high, format_low):
    """The bytes between the flags: the 11-bit length of the format field (type 3)."""
    return (format_high & 0x07) << 8 | format_low


class LengthFramedHdlcConnection(hdlc_connection.HdlcConnection):
    """dlms-cosem's HdlcConnection finding each frame in its buffer by the format field's length."""

    def _find_frame(self):
        buffer = self.buffer
        start = 0
        while start < len(buffer) and buffer[start] == FLAG:   # opening flag, idle flags
            start += 1
        if len(buffer) < start + 2:
            return None
        end = start + frame_length(buffer[start], buffer[start + 1])   # index of the closing flag
        if len(buffer) <= end:
            return None
        self.buffer_search_position = end + 1
        return bytearray(hdlc_frames.HDLC_FLAG) + buffer[start:end + 1]


class LengthFramedHdlcTransport(HdlcTransport):
    """dlms-cosem's HdlcTransport reading exactly one frame, flags included, per recv_frame()."""

    def recv_frame(self) -> bytes:
        byte = self.io.recv(1)
        while byte == hdlc_frames.HDLC_FLAG:   # opening flag (or a closing one shared with the last frame), idle flags
            byte = self.io.recv(1)
        head = byte + self.io.recv(1)
        rest = self.io.recv(max(1, frame_length(head[0], head[1]) - 1))   # up to and including the closing flag
        return hdlc_frames.HDLC_FLAG + head + rest


def transport(args, client_sap, io=None):
    io = io or BlockingTcpIO(host=args.host, port=args.port, timeout=args.timeout)
    if args.framing == "hdlc":
        hdlc = LengthFramedHdlcTransport(client_logical_address=client_sap, server_logical_address=args.server,
                                         server_physical_address=args.physical, io=io, timeout=args.timeout)
        # As HdlcTransport's own default (it passes the server address first).
        hdlc.hdlc_connection = LengthFramedHdlcConnection(hdlc.server_hdlc_address, hdlc.client_hdlc_address)
        return hdlc
    return TcpTransport(client_logical_address=client_sap, server_logical_address=args.server, io=io,
                        timeout=args.timeout)


class ScriptedIO:
    """BlockingTcpIO's interface to a scripted meter: each send() makes the next answer readable
    (a meter answers only when asked); reading past it is a socket timeout."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.data = bytearray()

    def connect(self):
        pass

    def disconnect(self):
        pass

    def send(self, data):
        if self.answers:
            self.data += self.answers.pop(0)

    def recv(self, amount=1):
        if len(self.data) < amount:
            raise exceptions.CommunicationError("Could not receive data") from TimeoutError("timed out")
        out = bytes(self.data[:amount])
        del self.data[:amount]
        return out

    def recv_until(self, end):
        data = b""
        while not data.endswith(end):
            data += self.recv()
        return data


def check_framing(args):
    """For each awkward place of 0x7E, one scripted connection: SNRM/UA, a GET answered by an
    I-frame made by dlms-cosem's own encoder with 0x7E there, DISC/UA. The payload must come back
    as sent. Returns the exit status."""
    rng = random.Random(62056)
    server = hdlc_address.HdlcAddress(logical_address=args.server, physical_address=args.physical, address_type="server")
    client = hdlc_address.HdlcAddress(logical_address=args.client, physical_address=None, address_type="client")
    hcs = 1 + 2 + client.length + server.length + 1   # flag, format, addresses, control
    cases = [   # name, last data byte (None: random), what the frame must hold
        ("FCS high byte 0x7E (the byte before the closing flag)", None, lambda f: f[-2] == FLAG and b"\x7e\x7e" not in f[1:-2]),
        ("FCS low byte 0x7E", None, lambda f: f[-3] == FLAG and f[-2] != FLAG),
        ("last data byte 0x7E", FLAG, lambda f: FLAG not in f[-3:-1]),
        ("HCS with 0x7E", None, lambda f: FLAG in f[hcs:hcs + 2] and b"\x7e\x7e" not in f[1:-1]),
        ("data 7E 7E", None, lambda f: b"\x7e\x7e" in f[hcs + 2:-3] and FLAG not in f[-3:-1]),
        ("data with single 0x7E bytes", None, lambda f: f[hcs + 2:-3].count(FLAG) >= 2 and b"\x7e\x7e" not in f[1:-1]),
        ("no 0x7E inside", None, lambda f: FLAG not in f[1:-1]),
    ]
    ua = hdlc_frames.UnNumberedAcknowledgmentFrame(client, server, None).to_bytes()
    get_clock = bytes.fromhex("C001C100080000010000FF0200")
    status = 0
    for name, last, wanted in cases:
        while True:
            payload = rng.randbytes(rng.randrange(1, 300)) + (bytes([last]) if last is not None else b"")
            frame = hdlc_frames.InformationFrame(client, server, LLC_RESPONSE + payload, send_sequence_number=0,
                                                 receive_sequence_number=1).to_bytes()
            if wanted(frame):
                break
        hdlc = transport(args, args.client, io=ScriptedIO([ua, frame, ua]))   # SNRM, GET, DISC
        try:
            hdlc.connect()
            received = bytes(hdlc.send_request(get_clock))
            hdlc.disconnect()
            outcome = "" if received == payload else "%d byte(s) received, %d sent" % (len(received), len(payload))
        except Exception as ex:  # noqa: BLE001  the stall shows as CommunicationError (a socket timeout)
            outcome = "%s: %s%s" % (type(ex).__name__, ex, ": %s" % ex.__cause__ if ex.__cause__ else "")
        inside = [i for i, byte in enumerate(frame) if byte == FLAG][1:-1]
        print("%s %s (%d-byte frame, 0x7E inside at %s)%s" % ("FAIL" if outcome else "ok  ", name, len(frame), inside or "none",
                                                            ": " + outcome if outcome else ""))
        status = status or (1 if outcome else 0)
    return status


class Reader:
    def __init__(self, args):
        self.args = args
        self.step = "connect"

    def call(self, step, fn, *a, **kw):
        """Runs one dlms-cosem step and maps its exceptions to exit codes."""
        self.step = step
        try:
            return fn(*a, **kw)
        except (HLSError,) as ex:
            raise Failure(2, step, "HLS failed: %s%s" % (ex, ": %s" % ex.__cause__ if ex.__cause__ else ""))
        except exceptions.DlmsClientException as ex:
            code = 2 if step.startswith("AARQ") else 4
            raise Failure(code, step, str(ex))
        except exceptions.CommunicationError as ex:
            raise Failure(3, step, "%s: %s" % (ex, ex.__cause__))
        except DataResultError as ex:
            raise Failure(4, step, str(ex))

    def read_counter(self):
        a = self.args
        client = DlmsClient(transport=transport(a, a.counter_client), authentication=NoSecurityAuthentication(),
                            timeout=a.timeout)
        self.call("connect (public client)", client.connect)
        try:
            self.call("AARQ/AARE (public client)", client.associate)
            attr = cosem.CosemAttribute(enumerations.CosemInterface.DATA, obis(a.counter_object), 2)
            raw = self.call("GET %s/2 (invocation counter)" % a.counter_object, client.get, attr)
            self.call("RLRQ/RLRE (public client)", client.release_association)
        finally:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001  a meter may already have closed the socket
                pass
        return int(utils.parse_as_dlms_data(raw))

    def run(self):
        a = self.args
        out = {}
        counter = a.invocation_counter
        if a.invocation_counter_from_meter:
            value = self.read_counter()
            out["invocationCounter"] = value
            counter = value + 1
        client = DlmsClient(
            transport=transport(a, a.client),
            authentication=HighLevelSecurityGmacAuthentication(challenge_length=a.challenge_length),
            encryption_key=bytes.fromhex(a.block_cipher_key),
            authentication_key=bytes.fromhex(a.auth_key),
            security_suite=0,
            client_system_title=bytes.fromhex(a.system_title),
            client_initial_invocation_counter=counter,
            timeout=a.timeout,
        )
        self.call("connect", client.connect)
        try:
            self.call("AARQ/AARE + HLS pass 3/4", client.associate)
            title = client.dlms_connection.meter_system_title
            if title:
                out["serverSystemTitle"] = bytes(title).hex().upper()
            out["clock"] = cell(self.get(client, CLOCK, "GET 0.0.1.0.0.255/2 (clock)"))
            regs = {}
            for ln in a.register or ["1.0.1.8.0.255", "1.0.2.8.0.255"]:
                iface = enumerations.CosemInterface.REGISTER
                su = self.get(client, cosem.CosemAttribute(iface, obis(ln), 3), "GET %s/3 (scaler_unit)" % ln)
                raw = self.get(client, cosem.CosemAttribute(iface, obis(ln), 2), "GET %s/2 (value)" % ln)
                regs[ln] = {"raw": cell(raw), "scaler": int(su[0]), "unit": int(su[1])}
            out["registers"] = regs
            if a.profile or a.from_ or a.to:
                ln = a.profile or "1.0.99.1.0.255"
                iface = enumerations.CosemInterface.PROFILE_GENERIC
                cols = self.get(client, cosem.CosemAttribute(iface, obis(ln), 3), "GET %s/3 (capture objects)" % ln)
                columns = ["%s/%d" % (".".join(str(b) for b in bytes(c[1])), int(c[2])) for c in cols]
                start = parse_iso(a.from_) if a.from_ else datetime.datetime(2000, 1, 1, tzinfo=UTC)
                end = parse_iso(a.to) if a.to else datetime.datetime.now(UTC)
                rng = RangeDescriptor(restricting_object=CaptureObject(CLOCK), from_value=start, to_value=end)
                rows = self.get(client, cosem.CosemAttribute(iface, obis(ln), 2),
                                "GET %s/2 by range %s..%s" % (ln, iso(start), iso(end)), rng)
                out["profile"] = {"columns": columns, "rows": [[cell(v) for v in row] for row in (rows or [])]}
            self.call("RLRQ/RLRE", client.release_association)
        finally:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001
                pass
        return out

    def get(self, client, attribute, step, access=None):
        raw = self.call(step, client.get, attribute, access)
        return utils.parse_as_dlms_data(raw)


def cell(v):
    if isinstance(v, datetime.datetime):
        return iso(v)
    if isinstance(v, (bytes, bytearray)):
        if len(v) == 12:
            try:
                return iso(datetime.datetime.fromtimestamp(decode_cosem_datetime(v), UTC))
            except ValueError:
                pass
        return bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [cell(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--framing", choices=["wrapper", "hdlc"], default="wrapper")
    ap.add_argument("--client", type=int, default=1, help="client SAP of the HLS-GMAC association")
    ap.add_argument("--server", type=int, default=1, help="server logical address")
    ap.add_argument("--physical", type=int, default=16, help="HDLC physical address")
    ap.add_argument("--timeout", type=int, default=10, help="socket timeout in seconds")
    ap.add_argument("--system-title", default="4D4D4D0000BC614E", help="client system title, 8 bytes hex")
    ap.add_argument("--block-cipher-key", default="000102030405060708090A0B0C0D0E0F", help="global unicast key, hex")
    ap.add_argument("--auth-key", default="D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", help="authentication key, hex")
    ap.add_argument("--challenge-length", type=int, default=32, help="HLS CtoS challenge length (8..64)")
    ap.add_argument("--invocation-counter", type=int, default=1, help="first invocation counter to send")
    ap.add_argument("--invocation-counter-from-meter", action="store_true",
                    help="read --counter-object with --counter-client first, then send its value + 1")
    ap.add_argument("--counter-client", type=int, default=16, help="client SAP that reads the counter (public)")
    ap.add_argument("--counter-object", default="0.0.43.1.0.255", help="invocation counter data object")
    ap.add_argument("--register", action="append", help="register OBIS (repeatable)")
    ap.add_argument("--profile", help="profile generic OBIS, e.g. 1.0.99.1.0.255")
    ap.add_argument("--from", dest="from_", help="profile range start, ISO 8601")
    ap.add_argument("--to", help="profile range end, ISO 8601")
    ap.add_argument("--verbose", "-v", action="store_true", help="dlms-cosem's debug log (frames) on stderr")
    ap.add_argument("--check-framing", action="store_true",
                    help="no meter: check that the HDLC transport reads frames with 0x7E inside them")
    args = ap.parse_args(argv)
    if args.port is None and not args.check_framing:
        ap.error("the following arguments are required: --port")
    # dlms-cosem logs through structlog, by default on stdout: stdout is for the JSON only.
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    structlog.configure(logger_factory=structlog.stdlib.LoggerFactory(),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if args.verbose else logging.WARNING))
    if args.check_framing:
        args.framing = "hdlc"
        return check_framing(args)
    stdout, sys.stdout = sys.stdout, sys.stderr
    reader = Reader(args)
    try:
        out = reader.run()
    except Failure as ex:
        sys.stderr.write("dlms_cosem_read: %s: %s\n" % (ex.step, " ".join(str(ex.message).split())))
        return ex.code
    except Exception as ex:  # noqa: BLE001  protocol errors inside dlms-cosem
        sys.stderr.write("dlms_cosem_read: %s: %s: %s\n" % (reader.step, type(ex).__name__, " ".join(str(ex).split())))
        return 1
    finally:
        sys.stdout = stdout
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
