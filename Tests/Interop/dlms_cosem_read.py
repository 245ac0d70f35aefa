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

dlms-cosem as shipped: DlmsClient(authentication=HighLevelSecurityGmacAuthentication(),
encryption_key, authentication_key, security_suite=0, client_system_title) over TcpTransport
(wrapper) or HdlcTransport, both on BlockingTcpIO. It ciphers the AARQ's InitiateRequest
(glo-initiate-request) and every xDLMS request as general-glo-ciphering (tag 0xDB, with the
client system title) and deciphers only general-glo-ciphering answers; its HLS-GMAC challenge is 32
bytes and its f(StoC) carries the invocation counter of the ACTION that transports it.

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

Exit status: 0 ok; 2 association refused (AARE rejected, or HLS failed); 3 timeout / connection
error; 4 a read failed; 1 anything else. The reason is printed on stderr as
"dlms_cosem_read: <step>: <message>".
"""
import argparse
import datetime
import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gurux_meter import decode_cosem_datetime, iso, parse_iso  # noqa: E402  (pure helpers, no Gurux)

import structlog  # noqa: E402
from dlms_cosem import cosem, enumerations, exceptions, utils  # noqa: E402
from dlms_cosem.client import DlmsClient, HLSError, DataResultError  # noqa: E402
from dlms_cosem.cosem.capture_object import CaptureObject  # noqa: E402
from dlms_cosem.cosem.selective_access import RangeDescriptor  # noqa: E402
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


def transport(args, client_sap):
    io = BlockingTcpIO(host=args.host, port=args.port, timeout=args.timeout)
    if args.framing == "hdlc":
        return HdlcTransport(client_logical_address=client_sap, server_logical_address=args.server,
                             server_physical_address=args.physical, io=io, timeout=args.timeout)
    return TcpTransport(client_logical_address=client_sap, server_logical_address=args.server, io=io,
                        timeout=args.timeout)


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
    ap.add_argument("--port", type=int, required=True)
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
    args = ap.parse_args(argv)
    # dlms-cosem logs through structlog, by default on stdout: stdout is for the JSON only.
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    structlog.configure(logger_factory=structlog.stdlib.LoggerFactory(),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if args.verbose else logging.WARNING))
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
