#!/usr/bin/env python3
"""Reads a DLMS/COSEM meter over TCP with Gurux's GXDLMSClient (gurux-dlms 1.0.203) and prints ONE
JSON document on stdout.

    python gurux_read.py --host 127.0.0.1 --port 4061 [--framing wrapper|hdlc]
                         [--client 16|17] [--password 12345678] [--server 1] [--physical 1]
                         [--max-info 128] [--max-pdu 1024] [--timeout 10]
                         [--register 1.0.1.8.0.255 --register 1.0.2.8.0.255]
                         [--profile 1.0.99.1.0.255 --from ISO --to ISO] [-v]
                         [--auth none|lls|hls|hls-md5|hls-sha1|hls-gmac|hls-sha256|hls-ecdsa]
                         [--signing-key HEX --meter-public-key HEX]
                         [--security none|authenticated|encrypted|both] [--system-title HEX]
                         [--block-cipher-key HEX --auth-key HEX] [--invocation-counter N |
                          --invocation-counter-from-meter] [--counter-client 16]

Output (numbers raw, i.e. unscaled; times ISO 8601 UTC):
    {"objects":["0.0.40.0.0.255","0.0.1.0.0.255",...],
     "clock":"2026-11-26T20:00:00Z",
     "registers":{"1.0.1.8.0.255":{"raw":9837200,"scaler":0,"unit":30},...},
     "profile":{"columns":["0.0.1.0.0.255/2","1.0.1.8.0.255/2","1.0.2.8.0.255/2","0.0.96.10.1.255/2"],
                "rows":[["2026-11-26T00:15:00Z",9837153,5902293,0],...]}}
"objects" is the association's object list (0.0.40.0.0.255 attribute 2) in meter order.
"profile" is present when --profile or --from/--to is given: capture objects (attribute 3) as
"<obis>/<attribute>", then the buffer (attribute 2) with selective access by range (selector 1,
restricting object 0.0.1.0.0.255/2, all columns) when --from/--to are given, the whole buffer
otherwise. A 12-byte octet-string cell is printed as an ISO time; other octet strings as hex.

Security (GXDLMSSecureClient): --auth hls-* runs the 4-pass HLS exchange (AARQ/AARE, then
reply_to_HLS_authentication on 0.0.40.0.0.255); --security ciphers the AARQ (glo-initiate-request)
and every request with suite 0 and the global keys. --invocation-counter-from-meter first opens a
separate, unciphered association as the public client (--counter-client, 16) on its own
connection, reads the invocation counter data object 0.0.43.1.0.255/2 (--counter-object) and then
uses counter + 1 (as Gurux's own sample reader does). --auth hls-ecdsa (mechanism 7) signs pass 3
with --signing-key (the client's raw private scalar, 32 bytes; Gurux 1.0.203 signs P-256 only) and
checks the meter's f(CtoS) with --meter-public-key (04 ‖ x ‖ y or x ‖ y), through the cipher's
signingKeyPair. Gurux print()s the private key while signing: the script sends that to stderr, so
keep the key a test key. The JSON then also holds
"invocationCounter" (the value read) and "serverSystemTitle" (hex, from the AARE).

Exit status: 0 ok; 2 association refused; 3 timeout / connection error; 4 a read failed;
1 anything else. The reason is printed on stderr as "gurux_read: <step>: <message>".
"""
import argparse
import datetime
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gurux_meter import decode_cosem_datetime, iso, parse_iso  # noqa: E402  (pure helpers, no Gurux)

from gurux_dlms import GXDLMSClient, GXReplyData, GXByteBuffer, GXDateTime, GXDLMSException  # noqa: E402
from gurux_dlms.enums import InterfaceType, Authentication, ErrorCode, Security  # noqa: E402
from gurux_dlms.objects import (GXDLMSClock, GXDLMSRegister, GXDLMSProfileGeneric,  # noqa: E402
                                GXDLMSAssociationLogicalName, GXDLMSData)
from gurux_dlms.secure import GXDLMSSecureClient  # noqa: E402

AUTH = {"none": Authentication.NONE, "lls": Authentication.LOW, "hls": Authentication.HIGH,
        "hls-md5": Authentication.HIGH_MD5, "hls-sha1": Authentication.HIGH_SHA1,
        "hls-gmac": Authentication.HIGH_GMAC, "hls-sha256": Authentication.HIGH_SHA256,
        "hls-ecdsa": Authentication.HIGH_ECDSA}
SECURITY = {"none": Security.NONE, "authenticated": Security.AUTHENTICATION,
            "encrypted": Security.ENCRYPTION, "both": Security.AUTHENTICATION_ENCRYPTION}


class Failure(Exception):
    def __init__(self, code, step, message):
        super().__init__(message)
        self.code, self.step, self.message = code, step, message


class Reader:
    def __init__(self, args, client=None, auth=None, secure=None):
        self.args = args
        hdlc = args.framing == "hdlc"
        server = GXDLMSClient.getServerAddress(args.server, args.physical) if hdlc else args.server
        client = args.client if client is None else client
        if auth is None:
            auth = AUTH[args.auth] if args.auth else (
                Authentication.LOW if client == 17 or (args.password and client != 16) else Authentication.NONE)
        if secure is None:   # Gurux's HLS code reads the cipher's system title and counter even without ciphering
            secure = args.security != "none" or auth > Authentication.LOW
        password = args.password.encode() if args.password and auth != Authentication.NONE else None
        framing = InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER
        if secure:
            self.client = GXDLMSSecureClient(True, client, server, auth, password, framing)
            c = self.client.ciphering
            c.security = SECURITY[args.security]
            c.systemTitle = bytearray.fromhex(args.system_title)
            c.blockCipherKey = bytearray.fromhex(args.block_cipher_key)
            c.authenticationKey = bytearray.fromhex(args.auth_key)
            c.invocationCounter = args.invocation_counter
            if args.dedicated_key:
                c.dedicatedKey = bytearray.fromhex(args.dedicated_key)
            if auth == Authentication.HIGH_ECDSA:
                # P-256 signatures are security suite 1: its number is in every security control byte.
                from gurux_dlms.objects.enums import SecuritySuite
                c.securitySuite = SecuritySuite.SUITE_1
                from gurux_dlms.ecdsa.GXPrivateKey import GXPrivateKey
                from gurux_dlms.ecdsa.GXPublicKey import GXPublicKey
                # (the meter's public key, our private key): GXSecure signs with [1], the AARE check verifies with [0].
                c.signingKeyPair = (GXPublicKey.fromRawBytes(bytes.fromhex(args.meter_public_key)),
                                    GXPrivateKey.fromRawBytes(bytes.fromhex(args.signing_key)))
        else:
            self.client = GXDLMSClient(True, client, server, auth, password, framing)
        self.auth = auth
        self.client.setMaxReceivePDUSize(args.max_pdu)
        if hdlc:
            self.client.hdlcSettings.maxInfoTX = args.max_info
            self.client.hdlcSettings.maxInfoRX = args.max_info
        self.hdlc = hdlc
        self.sock = None
        self.step = "connect"

    # ---- transport
    def connect(self):
        self.step = "connect"
        try:
            self.sock = socket.create_connection((self.args.host, self.args.port), timeout=self.args.timeout)
            self.sock.settimeout(self.args.timeout)
        except OSError as ex:
            raise Failure(3, self.step, "cannot connect to %s:%d: %s" % (self.args.host, self.args.port, ex))

    def packet(self, data, reply):
        """Sends one frame and reads until Gurux has parsed one complete answer frame."""
        notify = GXReplyData()
        if data:
            if self.args.verbose:
                sys.stderr.write("gurux_read: -> %s\n" % bytes(data).hex())
            self.sock.sendall(bytes(data))
        rd = GXByteBuffer()
        while True:
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                raise Failure(3, self.step, "timeout: no (complete) answer within %.1f s" % self.args.timeout)
            except OSError as ex:
                raise Failure(3, self.step, "connection error: %s" % ex)
            if not chunk:
                raise Failure(3, self.step, "meter closed the connection")
            if self.args.verbose:
                sys.stderr.write("gurux_read: <- %s\n" % chunk.hex())
            rd.set(chunk)
            try:
                if self.client.getData(rd, reply, notify):
                    break
            except GXDLMSException as ex:
                raise Failure(4, self.step, "meter error: %s" % ex)
        if reply.error:
            raise Failure(4, self.step, "meter answered error %s" % _error_name(reply.error))

    def exchange(self, data, reply=None):
        """Sends a request (one or several frames) and follows HDLC segments / GET blocks."""
        reply = reply or GXReplyData()
        frames = data if isinstance(data, list) else [data]
        for frame in frames:
            reply.clear()
            self.packet(frame, reply)
            while reply.isMoreData():
                nxt = None if reply.isStreaming() else self.client.receiverReady(reply)
                self.packet(nxt, reply)
        return reply

    # ---- session
    def open(self):
        self.connect()
        if self.hdlc:
            self.step = "SNRM/UA"
            r = self.exchange(self.client.snrmRequest())
            self.client.parseUAResponse(r.data)
        self.step = "AARQ/AARE"
        try:
            r = self.exchange(self.client.aarqRequest())
            self.client.parseAareResponse(r.data)
        except GXDLMSException as ex:
            raise Failure(2, self.step, "association refused: %s" % ex)
        except Failure as ex:
            if ex.code == 4:
                raise Failure(2, self.step, "association refused: %s" % ex.message)
            raise
        if self.auth > Authentication.LOW:
            # HLS pass 3/4: f(StoC) via reply_to_HLS_authentication, the meter's f(CtoS) checked.
            self.step = "HLS pass 3/4 (reply_to_HLS_authentication)"
            try:
                r = self.exchange(self.client.getApplicationAssociationRequest())
                self.client.parseApplicationAssociationResponse(r.data)
            except GXDLMSException as ex:
                raise Failure(2, self.step, "association refused: %s" % ex)
            except Failure as ex:
                if ex.code == 4:
                    raise Failure(2, self.step, "association refused: %s" % ex.message)
                raise

    def close(self):
        try:
            self.step = "RLRQ/RLRE"
            self.exchange(self.client.releaseRequest())
            if self.hdlc:
                self.step = "DISC/UA"
                self.exchange(self.client.disconnectRequest())
        except Failure as ex:
            sys.stderr.write("gurux_read: warning: %s: %s\n" % (ex.step, ex.message))
        finally:
            self.sock.close()

    def get(self, obj, attribute, step):
        self.step = step
        return self.exchange(self.client.read(obj, attribute)).value

    def read_counter(self):
        """The public client's view of the invocation counter data object (unciphered)."""
        self.open()
        try:
            return int(self.get(GXDLMSData(self.args.counter_object), 2, "GET %s/2 (invocation counter)" % self.args.counter_object))
        finally:
            self.close()

    # ---- readout
    def run(self):
        a = self.args
        out = {}
        if a.invocation_counter_from_meter:
            public = Reader(a, client=a.counter_client, auth=Authentication.NONE, secure=False)
            counter = public.read_counter()
            out["invocationCounter"] = counter
            self.client.ciphering.invocationCounter = counter + 1
        self.open()
        if isinstance(self.client, GXDLMSSecureClient) and self.client.settings.sourceSystemTitle:
            out["serverSystemTitle"] = bytes(self.client.settings.sourceSystemTitle).hex().upper()
        try:
            lst = self.get(GXDLMSAssociationLogicalName(), 2, "GET 0.0.40.0.0.255/2 (object list)")
            out["objects"] = [obis(it[2]) for it in lst]
            out["clock"] = cell(self.get(GXDLMSClock("0.0.1.0.0.255"), 2, "GET 0.0.1.0.0.255/2 (clock)"))
            regs = {}
            for ln in a.register or ["1.0.1.8.0.255", "1.0.2.8.0.255"]:
                reg = GXDLMSRegister(ln)
                su = self.get(reg, 3, "GET %s/3 (scaler_unit)" % ln)
                raw = self.get(reg, 2, "GET %s/2 (value)" % ln)
                regs[ln] = {"raw": plain(raw), "scaler": int(su[0]), "unit": int(su[1])}
            out["registers"] = regs
            if a.profile or a.from_ or a.to:
                pg = GXDLMSProfileGeneric(a.profile or "1.0.99.1.0.255")
                cols = self.get(pg, 3, "GET %s/3 (capture objects)" % pg.logicalName)
                columns = ["%s/%d" % (obis(c[1]), int(c[2])) for c in cols]
                if a.from_ or a.to:
                    start = parse_iso(a.from_) if a.from_ else datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
                    end = parse_iso(a.to) if a.to else datetime.datetime.now(datetime.timezone.utc)
                    self.step = "GET %s/2 by range %s..%s" % (pg.logicalName, iso(start), iso(end))
                    rows = self.exchange(self.client.readRowsByRange(pg, start, end)).value
                else:
                    rows = self.get(pg, 2, "GET %s/2 (buffer)" % pg.logicalName)
                out["profile"] = {"columns": columns, "rows": [[cell(v) for v in row] for row in (rows or [])]}
        finally:
            self.close()
        return out


def obis(v):
    return ".".join(str(b) for b in bytes(v))


def plain(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return v
    try:
        return int(v)
    except (TypeError, ValueError):
        return str(v)


def cell(v):
    if isinstance(v, GXDateTime):
        return iso(v.value)
    if isinstance(v, (bytes, bytearray)):
        if len(v) == 12:
            try:
                return iso(datetime.datetime.fromtimestamp(decode_cosem_datetime(v), datetime.timezone.utc))
            except ValueError:
                pass
        return bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [cell(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    return plain(v)


def _error_name(code):
    try:
        return "%s (%d)" % (ErrorCode(code).name, code)
    except ValueError:
        return str(code)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--framing", choices=["wrapper", "hdlc"], default="wrapper")
    ap.add_argument("--client", type=int, default=16, help="client SAP: 16 public, 17 LLS")
    ap.add_argument("--password", default=None, help="LLS password (client 17)")
    ap.add_argument("--server", type=int, default=1, help="server logical address")
    ap.add_argument("--physical", type=int, default=1, help="HDLC physical address")
    ap.add_argument("--max-info", type=int, default=128, help="HDLC max information field (TX and RX)")
    ap.add_argument("--max-pdu", type=int, default=1024, help="client max receive PDU size")
    ap.add_argument("--timeout", type=float, default=10.0, help="socket timeout in seconds")
    ap.add_argument("--register", action="append", help="register OBIS (repeatable)")
    ap.add_argument("--profile", help="profile generic OBIS, e.g. 1.0.99.1.0.255")
    ap.add_argument("--from", dest="from_", help="profile range start, ISO 8601")
    ap.add_argument("--to", help="profile range end, ISO 8601")
    ap.add_argument("--verbose", "-v", action="store_true", help="log frames in hex to stderr")
    ap.add_argument("--auth", choices=sorted(AUTH), help="authentication (default: LLS for client 17, else none)")
    ap.add_argument("--security", choices=sorted(SECURITY), default="none", help="ciphering of the APDUs (suite 0)")
    ap.add_argument("--system-title", default="4D4D4D0000BC614E", help="client system title, 8 bytes hex")
    ap.add_argument("--block-cipher-key", default="000102030405060708090A0B0C0D0E0F", help="global unicast key, hex")
    ap.add_argument("--auth-key", default="D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", help="authentication key, hex")
    ap.add_argument("--dedicated-key", help="dedicated key (hex) sent in the InitiateRequest")
    ap.add_argument("--invocation-counter", type=int, default=1, help="first invocation counter to send")
    ap.add_argument("--invocation-counter-from-meter", action="store_true",
                    help="read --counter-object with --counter-client first, then send its value + 1")
    ap.add_argument("--counter-client", type=int, default=16, help="client SAP that reads the counter (public)")
    ap.add_argument("--counter-object", default="0.0.43.1.0.255", help="invocation counter data object")
    ap.add_argument("--signing-key", help="hls-ecdsa: the client's private key, raw hex")
    ap.add_argument("--meter-public-key", help="hls-ecdsa: the meter's public key, hex 04|x|y or x|y")
    args = ap.parse_args(argv)
    if args.auth == "hls-ecdsa" and not (args.signing_key and args.meter_public_key):
        ap.error("--auth hls-ecdsa needs --signing-key and --meter-public-key")
    if args.client == 17 and not args.password and args.auth in (None, "lls"):
        ap.error("--client 17 needs --password")
    if args.auth in ("hls", "hls-md5", "hls-sha1", "hls-sha256", "lls") and not args.password:
        ap.error("--auth %s needs --password" % args.auth)
    # Gurux's decipher path print()s "Encryption is applied." etc. on stdout: keep stdout for the JSON.
    stdout, sys.stdout = sys.stdout, sys.stderr
    reader = Reader(args)
    try:
        out = reader.run()
    except Failure as ex:
        sys.stderr.write("gurux_read: %s: %s\n" % (ex.step, " ".join(str(ex.message).split())))
        return ex.code
    except Exception as ex:  # Gurux parse errors etc.
        sys.stderr.write("gurux_read: %s: %s: %s\n" % (reader.step, type(ex).__name__, ex))
        return 1
    finally:
        sys.stdout = stdout
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
