#!/usr/bin/env python3
"""A small DLMS/COSEM meter served by Gurux's GXDLMSServer over real TCP on 127.0.0.1.

Used to check the SwiftHES DLMS client against an independent implementation (gurux-dlms 1.0.203,
with the server defects listed in README.md patched below).

    python gurux_meter.py --port 4061 [--framing wrapper|hdlc] [--password 12345678]
                          [--max-pdu 1024] [--max-info 128] [--logical 1] [--physical 1]
                          [--now 2026-11-26T12:00:00Z] [--days 2]
    python gurux_meter.py --expect-profile --from ISO --to ISO [--now ISO] [--days 2]

Serving: prints "READY <port>" on stdout once listening (use --port 0 for an ephemeral port), one
client at a time, any number of reconnects; SIGTERM/SIGINT exit cleanly (status 0).

Associations: client SAP 16 = public, no authentication; client SAP 17 = low-level security with
--password (default 12345678). Anything else is rejected (AARE permanent-rejected).
Server address: logical device --logical (default 1); with HDLC the physical address --physical
(default 1) and the address is accepted in 1-, 2- or 4-byte form.

Objects (logical name referencing):
  0.0.40.0.0.255  association LN (class 15)           object list = everything below
  0.0.1.0.0.255   clock (class 8)                     time = "now" in UTC, deviation 0
  0.0.42.0.0.255  logical device name (class 1)       octet-string "GRX" + 13-digit serial
  1.0.1.8.0.255   register (class 3), double-long-unsigned, scaler 0,  unit 30 (Wh)
  1.0.2.8.0.255   register (class 3), double-long-unsigned, scaler -3, unit 30 (Wh)
  0.0.96.10.1.255 status (class 1), unsigned
  0.0.96.3.10.255 disconnect control (class 70)
  1.0.99.1.0.255  load profile (class 7), capture period 900 s, FIFO, columns
                  [0.0.1.0.0.255/2, 1.0.1.8.0.255/2, 1.0.2.8.0.255/2, 0.0.96.10.1.255/2]

"now" is --now if given, else the wall clock (UTC). The profile buffer holds one row per 15 minutes
for timestamps t with  floor(now/900)*900 - days*86400 < t <= floor(now/900)*900  (days*96 rows),
oldest first. With k = t_epoch_seconds / 900 a row is
    [t, 5*k, 3*k + (k % 4), 8 if k % 96 == 0 else 0]
(import Wh, export in mWh i.e. scaler -3, status byte). The registers hold the same function at
the newest row: 1.0.1.8.0.255 = 5*k_now, 1.0.2.8.0.255 = 3*k_now + (k_now % 4), status = 0.
Selective access by range (selector 1) returns the rows with from <= t <= to (UTC; a deviation of
0x8000 means UTC, otherwise local = UTC + deviation minutes, Gurux's convention) and honours the
selected-columns list; by entry (selector 2) is 1-based, inclusive.

--expect-profile prints the rows such a range read returns, in gurux_read.py's format:
    {"columns":["0.0.1.0.0.255/2",...],"rows":[["2026-11-26T00:15:00Z",9837153,5902293,0],...]}
"""
import argparse
import datetime
import json
import math
import os
import signal
import socket
import sys
import threading

UTC = datetime.timezone.utc
PERIOD = 900
COLUMNS = ["0.0.1.0.0.255/2", "1.0.1.8.0.255/2", "1.0.2.8.0.255/2", "0.0.96.10.1.255/2"]


# ---------------------------------------------------------------- deterministic data (no Gurux)

def parse_iso(text):
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def row_values(t_epoch):
    k = t_epoch // PERIOD
    return [5 * k, 3 * k + (k % 4), 8 if k % 96 == 0 else 0]


def profile_epochs(now, days):
    """Timestamps (epoch seconds, oldest first) in the profile buffer for a given 'now'."""
    last = int(now.timestamp()) // PERIOD * PERIOD
    n = days * 86400 // PERIOD
    return [last - (n - 1 - i) * PERIOD for i in range(n)]


def expected_rows(now, days, start, end):
    lo, hi = start.timestamp(), end.timestamp()
    return [[iso(datetime.datetime.fromtimestamp(t, UTC))] + row_values(t)
            for t in profile_epochs(now, days) if lo <= t <= hi]


# ---------------------------------------------------------------- A-XDR helpers

def _len(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82]) + n.to_bytes(2, "big")


def cosem_datetime(t_epoch):
    d = datetime.datetime.fromtimestamp(t_epoch, UTC)
    return (d.year.to_bytes(2, "big") + bytes([d.month, d.day, d.isoweekday(), d.hour, d.minute, d.second, 0])
            + (0).to_bytes(2, "big", signed=True) + b"\x00")


def decode_cosem_datetime(b):
    """12-byte COSEM date-time -> epoch seconds (UTC). Unspecified fields (0xFF) count as 0."""
    b = bytes(b)
    if len(b) != 12:
        raise ValueError("date-time must be 12 bytes, got %d" % len(b))
    year = int.from_bytes(b[0:2], "big")
    month, day, hour, minute, second = b[2], b[3], b[5], b[6], b[7]
    hs = b[8] if b[8] != 0xFF else 0
    fix = lambda v, dflt: dflt if v == 0xFF else v
    dev = int.from_bytes(b[9:11], "big", signed=True)
    dt = datetime.datetime(year, fix(month, 1), fix(day, 1), fix(hour, 0), fix(minute, 0), fix(second, 0),
                           hs * 10000, tzinfo=UTC)
    t = dt.timestamp()
    if dev != -0x8000:
        t -= dev * 60      # Gurux convention: local = UTC + deviation
    return t


def encode_rows(epochs, cols):
    out = bytearray([0x01]) + _len(len(epochs))
    for t in epochs:
        cells = [b"\x09\x0c" + cosem_datetime(t)]
        a, b, s = row_values(t)
        cells.append(b"\x06" + a.to_bytes(4, "big"))
        cells.append(b"\x06" + b.to_bytes(4, "big"))
        cells.append(b"\x11" + bytes([s]))
        out += b"\x02" + _len(len(cols))
        for c in cols:
            out += cells[c]
    return bytes(out)


# ---------------------------------------------------------------- Gurux server (patched)

def build_server_classes():
    from gurux_dlms import GXDLMSServer, GXServerReply, GXDateTime, GXDLMSSettings
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms.GXDLMS import GXDLMS
    from gurux_dlms._GXAPDU import _GXAPDU
    from gurux_dlms._HDLCInfo import _HDLCInfo
    from gurux_dlms.internal._GXCommon import _GXCommon
    from gurux_dlms.ConnectionState import ConnectionState
    from gurux_dlms.enums import (InterfaceType, Authentication, Unit, AccessMode, MethodAccessMode,
                                  SourceDiagnostic, DataType, ErrorCode)
    from gurux_dlms.objects import (GXDLMSClock, GXDLMSRegister, GXDLMSData, GXDLMSProfileGeneric,
                                    GXDLMSDisconnectControl, GXDLMSAssociationLogicalName, GXDLMSCaptureObject)
    from gurux_dlms.objects.enums import SortMethod
    from gurux_dlms.GXDLMSConnectionEventArgs import GXDLMSConnectionEventArgs

    # Defect: GXServerReply lacks the setter/getter the server calls.
    if not hasattr(GXServerReply, "setReply"):
        GXServerReply.setReply = lambda self, value: setattr(self, "reply", value)
    if not hasattr(GXServerReply, "getConnectionInfo"):
        GXServerReply.getConnectionInfo = lambda self: self.connectionInfo or GXDLMSConnectionEventArgs()
    # Defect: GET-next (getRequestNextDataBlock) reads settings.gbtWndowSize (typo) ...
    if not hasattr(GXDLMSSettings, "gbtWndowSize"):
        GXDLMSSettings.gbtWndowSize = property(lambda self: self.gbtWindowSize)
    # ... and server.getTransaction()/setTransaction(), which GXDLMSServer does not define: every
    # long GET died with AttributeError after the first block (hardware-fault appended to it).
    if not hasattr(GXDLMSServer, "getTransaction"):
        GXDLMSServer.getTransaction = lambda self: self.transaction
        GXDLMSServer.setTransaction = lambda self, value: setattr(self, "transaction", value)

    # ... and GXDLMSLongTransaction.setData(), which does not exist either.
    from gurux_dlms.GXDLMSLongTransaction import GXDLMSLongTransaction
    if not hasattr(GXDLMSLongTransaction, "setData"):
        def _set_data(self, bb):
            rest = GXByteBuffer()
            rest.set(bb)   # copies from bb.position: what is not sent yet
            self.data = rest
        GXDLMSLongTransaction.setData = _set_data

    # Defect: when the client proposes a larger PDU than maxServerPDUSize, _GXAPDU.parseInitiate
    # does `settings.setMaxPduSize = settings.maxServerPDUSize` (a typo that only adds an attribute),
    # so --max-pdu was ignored and the server answered with the client's size. Clamp on assignment.
    class ServerSettings(GXDLMSSettings):
        @property
        def maxPduSize(self):
            return self.__dict__.get("_pdu", 0xFFFF)

        @maxPduSize.setter
        def maxPduSize(self, value):
            limit = self.__dict__.get("maxServerPDUSize", 0xFFFF)
            self.__dict__["_pdu"] = min(int(value), limit) if self.isServer else int(value)

        def getMaxPduSize(self):   # called by getRequestNextDataBlock, missing too
            return self.maxPduSize

    class Association(GXDLMSAssociationLogicalName):
        def getValue(self, settings, e):
            # Defect: getObjects() reads e.isSkipMaxPduSize (ValueEventArgs has skipMaxPduSize) and
            # encodes the list piecewise per PDU, re-reading through transaction.targets on GET-next,
            # which is a single ValueEventArgs there (not iterable). Encode the whole list at once
            # and let the server block-transfer the bytes.
            if e.index != 2:
                return super().getValue(settings, e)
            settings.index = 0
            e.skipMaxPduSize = True
            e.isSkipMaxPduSize = True
            data = self.getObjects(settings, e)
            settings.index = 0
            settings.count = 0
            e.byteArray = True
            return data.array()

    class Clock(GXDLMSClock):
        def __init__(self, meter):
            super().__init__("0.0.1.0.0.255")
            self.meter = meter
            self.timeZone = 0

        def getValue(self, settings, e):
            if e.index == 2:
                # Encode ourselves: Gurux derives the deviation from the host's local zone.
                e.byteArray = True
                return b"\x09\x0c" + cosem_datetime(int(self.meter.now().timestamp()))
            return super().getValue(settings, e)

    class Register(GXDLMSRegister):
        def __init__(self, ln, meter, index, scaler):
            super().__init__(ln)
            self.meter, self.index, self.scalerExp = meter, index, scaler
            self.scaler = 10.0 ** scaler
            self.unit = Unit.ACTIVE_ENERGY

        def getDataType(self, index):
            return DataType.UINT32 if index == 2 else super().getDataType(index)

        def getValue(self, settings, e):
            if e.index == 2:
                last = profile_epochs(self.meter.now(), 1)[-1]
                return row_values(last)[self.index]
            if e.index == 3:
                # Defect: Gurux encodes floor(log10(scaler)), i.e. 10**3 -> 2 (float rounding).
                e.byteArray = True
                return bytes([0x02, 0x02, 0x0F, self.scalerExp & 0xFF, 0x16, int(self.unit)])
            return super().getValue(settings, e)

    class Profile(GXDLMSProfileGeneric):
        def __init__(self, meter, capture):
            super().__init__("1.0.99.1.0.255")
            self.meter = meter
            self.capturePeriod = PERIOD
            self.sortMethod = SortMethod.FIFO
            for obj in capture:
                self.captureObjects.append((obj, GXDLMSCaptureObject(2, 0)))
            self.profileEntries = meter.days * 86400 // PERIOD
            self.entriesInUse = self.profileEntries

        def getValue(self, settings, e):
            # Defect: Gurux's range filter compares datetime with int (TypeError), its column
            # selection wraps the capture list in another list (rows encoded with 0 cells) and it
            # re-reads the buffer per block. We filter and encode the whole answer here; the server
            # then block-transfers the bytes.
            if e.index != 2:
                return super().getValue(settings, e)
            epochs = profile_epochs(self.meter.now(), self.meter.days)
            cols = list(range(4))
            try:
                if e.selector == 1:
                    p = e.parameters
                    lo, hi = decode_cosem_datetime(p[1]), decode_cosem_datetime(p[2])
                    epochs = [t for t in epochs if lo <= t <= hi]
                    if len(p) > 3 and p[3]:
                        cols = [self._column(c) for c in p[3]]
                elif e.selector == 2:
                    p = e.parameters
                    first, last = max(p[0], 1), p[1] or len(epochs)
                    epochs = epochs[first - 1:last]
                    c0 = p[2] if len(p) > 2 and p[2] else 1
                    c1 = p[3] if len(p) > 3 and p[3] else 4
                    cols = list(range(c0 - 1, c1))
                elif e.selector not in (0, None):
                    raise ValueError("selector %r" % e.selector)
            except Exception as ex:  # malformed parameters -> access error, not a crash
                log("profile: bad selective access %r: %s" % (e.parameters, ex))
                e.error = ErrorCode.OTHER_REASON
                e.byteArray = True
                return b""
            self.entriesInUse = len(profile_epochs(self.meter.now(), self.meter.days))
            e.byteArray = True
            return encode_rows(epochs, cols)

        def _column(self, c):
            ln = _GXCommon.toLogicalName(c[1])
            for i, (obj, co) in enumerate(self.captureObjects):
                if obj.logicalName == ln and co.attributeIndex == c[2]:
                    return i
            raise ValueError("no column %s/%s" % (ln, c[2]))

    class Meter(GXDLMSServer):
        def __init__(self, args):
            framing = InterfaceType.HDLC if args.framing == "hdlc" else InterfaceType.WRAPPER
            super().__init__(True, framing)
            self.args = args
            self.days = args.days
            self.fixed_now = parse_iso(args.now) if args.now else None
            self.settings.__class__ = ServerSettings
            self.settings.maxServerPDUSize = args.max_pdu
            self.settings.maxPduSize = args.max_pdu
            self.password = args.password.encode()
            self.max_info = args.max_info
            self.assoc = Association()
            self.assoc.authenticationMechanismName.mechanismId = Authentication.LOW
            self.assoc.secret = self.password
            self.clock = Clock(self)
            self.r1 = Register("1.0.1.8.0.255", self, 0, 0)
            self.r2 = Register("1.0.2.8.0.255", self, 1, -3)
            self.status = GXDLMSData("0.0.96.10.1.255")
            self.status.value = 0
            self.status.setDataType(2, DataType.UINT8)
            self.ldn = GXDLMSData("0.0.42.0.0.255")
            self.ldn.value = ("GRX%013d" % args.physical).encode()
            self.ldn.setDataType(2, DataType.OCTET_STRING)
            self.disconnect = GXDLMSDisconnectControl("0.0.96.3.10.255")
            self.profile = Profile(self, [self.clock, self.r1, self.r2, self.status])
            for o in (self.assoc, self.clock, self.ldn, self.r1, self.r2, self.status, self.disconnect, self.profile):
                self.items.append(o)
            # Defect: initialize() appends the whole collection to an empty association object
            # list as ONE element; fill the list first so it is left alone.
            for o in self.items:
                self.assoc.objectList.append(o)
            self.initialize()

        def now(self):
            return self.fixed_now or datetime.datetime.now(UTC)

        # --- addressing / authentication
        def isTarget(self, serverAddress, clientAddress):
            ok_client = clientAddress in (16, 17)
            if self.settings.interfaceType == InterfaceType.WRAPPER:
                ok_server = serverAddress == self.args.logical
            else:
                lg, ph = self.args.logical, self.args.physical
                ok_server = serverAddress in (lg, (lg << 7) | ph, (lg << 14) | ph)
            if not (ok_client and ok_server):
                log("rejecting client %s -> server %s" % (clientAddress, serverAddress))
            return ok_client and ok_server

        def onValidateAuthentication(self, authentication, password):
            client = self.settings.clientAddress
            if client == 16 and authentication == Authentication.NONE:
                return SourceDiagnostic.NONE
            if client == 17 and authentication == Authentication.LOW and bytes(password or b"") == self.password:
                return SourceDiagnostic.NONE
            if client == 17 and authentication == Authentication.NONE:
                return SourceDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED
            log("association refused: client %s authentication %s" % (client, authentication))
            return SourceDiagnostic.AUTHENTICATION_FAILURE

        # --- defect: RLRE. Gurux writes 63 <n> 80 01 00 BE <n+1> 04 <n> <n bytes>: both outer
        # lengths short (n instead of n+7, n+1 instead of n+2). Write the right lengths.
        def handleReleaseRequest(self, data):
            if self.settings.interfaceType == InterfaceType.HDLC:
                self.replyData.set(_GXCommon.LLC_REPLY_BYTES)
            tmp = _GXAPDU.getUserInformation(self.settings, self.settings.cipher)
            ui = bytes([0x04, len(tmp)]) + bytes(tmp)
            body = bytes([0x80, 0x01, 0x00, 0xBE, len(ui)]) + ui
            self.replyData.set(bytes([0x63, len(body)]) + body)

        # --- defect: SNRM/UA. Gurux dereferences self.hdlc (None unless set, and if set its
        # inactivity check subtracts datetimes from ints), never applies our limits, and answers a
        # repeated SNRM inside an association with an I-frame (stale replyData). Negotiate here.
        def handleSnrmRequest(self, data):
            h = self.settings.hdlc
            h.maxInfoTX = h.maxInfoRX = 128
            h.windowSizeTX = h.windowSizeRX = 1
            GXDLMS.parseSnrmUaResponse(data, h)   # client's RX -> our TX and vice versa
            h.maxInfoTX = min(h.maxInfoTX, self.max_info)
            h.maxInfoRX = min(h.maxInfoRX, self.max_info)
            h.windowSizeTX = h.windowSizeRX = 1
            self.reset(True)
            self.replyData.clear()
            self.transaction = None
            self.settings.resetFrameSequence()
            self._ua_body()
            self.settings.connected = ConnectionState.HDLC

        def _ua_body(self):
            h = self.settings.hdlc
            b = self.replyData
            b.setUInt8(0x81); b.setUInt8(0x80); b.setUInt8(0)
            b.setUInt8(_HDLCInfo.MAX_INFO_TX); GXDLMS.appendHdlcParameter(b, h.maxInfoTX)
            b.setUInt8(_HDLCInfo.MAX_INFO_RX); GXDLMS.appendHdlcParameter(b, h.maxInfoRX)
            b.setUInt8(_HDLCInfo.WINDOW_SIZE_TX); b.setUInt8(4); b.setUInt32(h.windowSizeTX)
            b.setUInt8(_HDLCInfo.WINDOW_SIZE_RX); b.setUInt8(4); b.setUInt32(h.windowSizeRX)
            b.setUInt8(len(b) - 3, 2)   # Gurux: setUInt8(2, len - 3), arguments swapped

        def generateDisconnectRequest(self):
            # Defect: same self.hdlc dereference; a UA without information field is valid.
            self.replyData.clear()
            self.transaction = None

        def handleCommand(self, cmd, data, sr):
            from gurux_dlms.enums import Command
            if cmd == Command.SNRM:
                # replyData may still hold segments of an abandoned answer; the frame type would
                # then become an I-frame instead of UA.
                self.replyData.clear()
            raw = bytes(data.array()) if data is not None else b""
            try:
                return super().handleCommand(cmd, data, sr)
            except Exception as ex:
                # Defect: Gurux's own error path (receivedData.size(0), reportError) raises again;
                # answer a well-formed error response ourselves and drop any long transaction.
                log("handleCommand(%s) raised %r" % (cmd, ex))
                if VERBOSE:
                    import traceback
                    traceback.print_exc()
                return self._error_reply(cmd, raw)

        def _error_reply(self, cmd, raw):
            from gurux_dlms.enums import Command
            self.transaction = None
            self.settings.setCount(0)
            self.settings.setIndex(0)
            self.replyData.clear()
            inv = raw[1] if len(raw) > 1 else 0xC1
            apdu = {Command.GET_REQUEST: bytes([0xC4, 0x01, inv, 0x01, ErrorCode.OTHER_REASON]),
                    Command.SET_REQUEST: bytes([0xC5, 0x01, inv, ErrorCode.OTHER_REASON]),
                    Command.METHOD_REQUEST: bytes([0xC7, 0x01, inv, ErrorCode.OTHER_REASON, 0x00])}.get(
                        cmd, bytes([0x0E, 0x01, 0x06, 0x00]))   # confirmed-service-error: service/other
            if self.settings.interfaceType == InterfaceType.HDLC:
                self.replyData.set(_GXCommon.LLC_REPLY_BYTES)
            self.replyData.set(apdu)
            if self.settings.interfaceType == InterfaceType.WRAPPER:
                return GXDLMS.getWrapperFrame(self.settings, cmd, self.replyData)
            return GXDLMS.getHdlcFrame(self.settings, self.settings.getNextSend(False), self.replyData)

        # --- hooks the abstract base requires (and notifyRead, which it calls but lacks)
        def notifyRead(self, *args): pass
        def onPreGet(self, args): pass
        def onPostGet(self, args): pass
        def onFindObject(self, objectType, sn, ln): return None
        def onPreRead(self, args=None): pass
        def onPostRead(self, args=None): pass
        def onPreWrite(self, args): pass
        def onPostWrite(self, args): pass
        def onConnected(self, connectionInfo): log("associated (client %s)" % self.settings.clientAddress)
        def onInvalidConnection(self, connectionInfo): log("invalid connection")
        def onDisconnected(self, connectionInfo): log("released")
        def onGetAttributeAccess(self, arg):
            return AccessMode.READ_WRITE
        def onGetMethodAccess(self, arg): return MethodAccessMode.ACCESS
        def onPreAction(self, args): pass
        def onPostAction(self, args): pass

        def new_connection(self):
            self.reset()
            self.transaction = None
            self.replyData.clear()
            self.receivedData.clear()
            self.settings.connected = ConnectionState.NONE
            self.settings.resetFrameSequence()
            self.settings.hdlc.maxInfoTX = self.settings.hdlc.maxInfoRX = 128
            self.settings.hdlc.windowSizeTX = self.settings.hdlc.windowSizeRX = 1

    return Meter, GXServerReply


VERBOSE = False


def log(msg):
    if VERBOSE:
        sys.stderr.write("gurux_meter: %s\n" % msg)
        sys.stderr.flush()


def serve(args):
    Meter, GXServerReply = build_server_classes()
    meter = Meter(args)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    lsock.listen(4)
    stop = threading.Event()
    current = []

    def on_signal(signum, frame):
        stop.set()
        for s in [lsock] + current:   # wake accept()/recv() so the loop ends
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        lsock.close()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print("READY %d" % lsock.getsockname()[1], flush=True)
    while not stop.is_set():
        try:
            conn, peer = lsock.accept()
        except OSError:
            break
        current[:] = [conn]
        log("connection from %s:%d" % peer)
        conn.settimeout(args.idle_timeout)
        meter.new_connection()
        try:
            while not stop.is_set():
                data = conn.recv(4096)
                if not data:
                    break
                if VERBOSE:
                    log("<- %s" % data.hex())
                sr = GXServerReply(bytearray(data))
                try:
                    meter.handleRequest(sr)
                except Exception as ex:  # never let one bad frame kill the meter
                    log("handleRequest raised %r" % ex)
                    if VERBOSE:
                        import traceback
                        traceback.print_exc()
                    meter.new_connection()
                    continue
                if sr.reply:
                    reply = bytes(sr.reply)
                    if VERBOSE:
                        log("-> %s" % reply.hex())
                    conn.sendall(reply)
        except (OSError, socket.timeout) as ex:
            log("connection ended: %r" % ex)
        finally:
            current[:] = []
            conn.close()
            log("disconnected")
    return 0


def main(argv=None):
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4061)
    ap.add_argument("--framing", choices=["wrapper", "hdlc"], default="wrapper")
    ap.add_argument("--password", default="12345678", help="LLS password for client SAP 17")
    ap.add_argument("--max-pdu", type=int, default=1024, help="server max PDU size")
    ap.add_argument("--max-info", type=int, default=128, help="HDLC max information field length")
    ap.add_argument("--logical", type=int, default=1, help="server logical device address")
    ap.add_argument("--physical", type=int, default=1, help="HDLC physical address (also LDN serial)")
    ap.add_argument("--now", help="fixed meter time (ISO 8601); default: wall clock")
    ap.add_argument("--days", type=int, default=2, help="days of load profile in the buffer")
    ap.add_argument("--idle-timeout", type=float, default=120.0, help="drop a silent client after N s")
    ap.add_argument("--verbose", "-v", action="store_true", help="log frames to stderr")
    ap.add_argument("--expect-profile", action="store_true", help="print expected rows as JSON and exit")
    ap.add_argument("--from", dest="from_", help="range start (ISO 8601) for --expect-profile")
    ap.add_argument("--to", help="range end (ISO 8601) for --expect-profile")
    args = ap.parse_args(argv)
    VERBOSE = args.verbose
    if args.expect_profile:
        now = parse_iso(args.now) if args.now else datetime.datetime.now(UTC)
        start = parse_iso(args.from_) if args.from_ else datetime.datetime.fromtimestamp(0, UTC)
        end = parse_iso(args.to) if args.to else now
        json.dump({"columns": COLUMNS, "rows": expected_rows(now, args.days, start, end)}, sys.stdout,
                  separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
