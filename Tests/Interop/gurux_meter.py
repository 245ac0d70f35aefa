#!/usr/bin/env python3
"""A small DLMS/COSEM meter served by Gurux's GXDLMSServer over real TCP on 127.0.0.1.

Used to check the SwiftHES DLMS client against an independent implementation (gurux-dlms 1.0.203,
with the server defects listed in README.md patched below).

    python gurux_meter.py --port 4061 [--framing wrapper|hdlc] [--password 12345678]
                          [--max-pdu 1024] [--max-info 128] [--logical 1] [--physical 1]
                          [--now 2026-11-26T12:00:00Z] [--days 2]
    python gurux_meter.py --secure [--block-cipher-key HEX] [--auth-key HEX] [--system-title HEX] ...
    python gurux_meter.py --expect-profile --from ISO --to ISO [--now ISO] [--days 2]

Serving: prints "READY <port>" on stdout once listening (use --port 0 for an ephemeral port), one
client at a time, any number of reconnects; SIGTERM/SIGINT exit cleanly (status 0).

Associations: client SAP 16 = public, no authentication; client SAP 17 = low-level security with
--password (default 12345678). Anything else is rejected (AARE permanent-rejected).
--secure (GXDLMSSecureServer): client SAP 1 = HLS-GMAC (mechanism 5; also MD5, SHA-1, SHA-256 with
--hls-secret, default "Gurux") with suite 0 ciphering (or none: --security is the client's choice) of the
InitiateRequest and of every APDU, global keys --block-cipher-key / --auth-key (default the
examples' EK 000102...0F and AK D0D1...DF), server system title --system-title (default "GRX" and
the physical address in 5 bytes, 4752580000000001 for physical 1); client SAP 16 stays public and
unciphered and can read the invocation counter 0.0.43.1.0.255 (the last counter accepted from
client 1; a client sends counter + 1). Client 17 (LLS) still works. --ecdsa-signing-key (the meter's
raw P-256 private key) with --ecdsa-client-public-key adds HLS-ECDSA (mechanism 7) for client 1,
checked and answered with Gurux's GXEcdsa.
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
import hashlib
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

def patch_secure_server():
    """Gurux 1.0.203's server-side security defects (README.md), patched in place."""
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms._GXAPDU import _GXAPDU
    from gurux_dlms.enums import Authentication, AssociationResult, Security

    def generate_aare(cls, settings, data, result, diagnostic, cipher, errorData, encryptedData):
        # Defect: _GXAPDU.generateAARE writes the responding-AP-title as A4 <len> 04 and then
        # calls setUInt8() without a value (TypeError: every HLS-GMAC or ciphered AARQ dies), and
        # the responding-authentication-value as AA <len> 80 <len> (outer length short by 2).
        # The same AARE with the right lengths:
        body = GXByteBuffer()
        cls.generateApplicationContextName(settings, body, cipher)
        body.set(bytes([0xA2, 0x03, 0x02, 0x01, int(result)]))
        body.set(bytes([0xA3, 0x05, 0xA1, 0x03, 0x02, 0x01, int(diagnostic)]))
        if cipher and (settings.authentication in (Authentication.HIGH_GMAC, Authentication.HIGH_SHA256, Authentication.HIGH_ECDSA)
                       or cipher.isCiphered()):
            title = bytes(cipher.systemTitle)
            body.set(bytes([0xA4, 2 + len(title), 0x04, len(title)]) + title)
        if settings.authentication > Authentication.LOW:
            challenge = bytes(settings.stoCChallenge)
            body.set(bytes([0x88, 0x02, 0x07, 0x80, 0x89, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x02,
                            int(settings.authentication)]))
            body.set(bytes([0xAA, 2 + len(challenge), 0x80, len(challenge)]) + challenge)
        if result == AssociationResult.ACCEPTED or not cipher or cipher.security == Security.NONE:
            if errorData:
                info = bytes(errorData.array() if hasattr(errorData, "array") else errorData)
            else:
                info = bytes(cls.getUserInformation(settings, cipher))
                if cipher and cipher.isCiphered():
                    # Defect: the glo-initiate-response is ciphered with the server's invocation
                    # counter but the counter is not advanced: the next APDU reused it (same IV).
                    cipher.invocationCounter += 1
            body.set(bytes([0xBE, 2 + len(info), 0x04, len(info)]) + info)
        raw = bytes(body.array())
        data.set(bytes([0x61, len(raw)]) + raw)
    _GXAPDU.generateAARE = classmethod(generate_aare)

    from gurux_dlms.GXDLMS import GXDLMS
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings as GXDLMSSettings_
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.GXCiphering import GXCiphering
    from gurux_dlms.ConnectionState import ConnectionState
    from gurux_dlms.enums import Command, RequestTypes

    def handle_glo_ded_request(cls, settings, data):
        # Defect: GXDLMS.handleGloDedRequest builds AesGcmParameter(systemTitle, key, ak) without
        # the leading tag argument (title as tag, key as title, AK as key, no AK): every glo-/ded-
        # request fails to decipher, and the failure inside getData() is answered with an HDLC FRMR
        # frame even over the wrapper. Also, nothing checks the client's invocation counter.
        # Here: the right parameters, the counter must grow (Green Book replay protection), and a
        # failure is remembered so Meter.handleCommand answers an exception-response.
        if settings.cipher is None:
            raise ValueError("Secure connection is not supported.")
        if (data.moreData & RequestTypes.FRAME) != 0:
            data.data.position = data.data.position - 1
            return
        data.data.position = data.data.position - 1
        cipher = settings.cipher
        dedicated = cipher.dedicatedKey and (settings.connected & ConnectionState.DLMS) != 0
        key = cipher.dedicatedKey if dedicated else cipher.blockCipherKey
        p = AesGcmParameter(0, settings.sourceSystemTitle, key, cipher.authenticationKey)
        guard = settings.rx_guard
        try:
            tmp = GXCiphering.decrypt(settings, p, data.data)
        except Exception as ex:  # noqa: BLE001  wrong key, title or tag
            guard["failure"] = ("deciphering", repr(ex))
            data.data.clear()
            data.command = Command.EXCEPTION_RESPONSE
            return
        if p.invocationCounter <= guard["last"]:
            guard["failure"] = ("counter", "invocation counter %d <= last accepted %d" % (p.invocationCounter, guard["last"]))
            data.data.clear()
            data.command = Command.EXCEPTION_RESPONSE
            return
        guard["last"] = p.invocationCounter
        if data.isComplete and (data.moreData & RequestTypes.FRAME) == 0:
            settings._onPduEventHandler(data.moreData == 0, tmp)  # pylint: disable=W0212
        data.data.clear()
        data.data.set(tmp)
        data.command = Command(data.data.getUInt8())
    GXDLMS.handleGloDedRequest = classmethod(handle_glo_ded_request)

    if not hasattr(GXDLMSSettings_, "setConnected"):
        GXDLMSSettings_.setConnected = lambda self, value: setattr(self, "connected", value)

    # Defect: decryptAesGcm runs GXDLMSChipperingStream with encrypt=True, and flushFinalBlock()
    # compares tags only when decrypting: an authenticated-and-encrypted APDU is deciphered
    # without checking its tag (a wrong AK, or a tampered APDU, is accepted). Check it here.
    from gurux_dlms.GXDLMSChippering import GXDLMSChippering
    from gurux_dlms.CountType import CountType
    decrypt = GXDLMSChippering.decryptAesGcm.__func__

    def decrypt_checked(cls, settings, p, data):
        received = bytes(data._data[len(data) - 12:len(data)])  # pylint: disable=W0212
        plain = decrypt(cls, settings, p, data)
        if p.security == Security.AUTHENTICATION_ENCRYPTION:
            q = AesGcmParameter(p.tag, p.systemTitle, p.blockCipherKey, p.authenticationKey)
            q.security, q.securitySuite, q.invocationCounter = p.security, p.securitySuite, p.invocationCounter
            q.type_ = CountType.TAG
            cls.encryptAesGcm(q, bytes(plain))
            if bytes(q.countTag) != received:
                raise ValueError("Decrypt failed. Invalid tag.")
        return plain
    GXDLMSChippering.decryptAesGcm = classmethod(decrypt_checked)

    # Defect: handleMethodRequest calls server.onPreAction(list(e)) on one ValueEventArgs, which
    # is not iterable: every ACTION (reply_to_HLS_authentication included) raised TypeError.
    from gurux_dlms.ValueEventArgs import ValueEventArgs
    if not hasattr(ValueEventArgs, "__iter__"):
        ValueEventArgs.__iter__ = lambda self: iter([self])


def build_server_classes(secure=False):
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

    HLS_MECHANISMS = (Authentication.HIGH_MD5, Authentication.HIGH_SHA1, Authentication.HIGH_GMAC, Authentication.HIGH_SHA256,
                      Authentication.HIGH_ECDSA)

    class Association(GXDLMSAssociationLogicalName):
        def invoke(self, settings, e):
            # Defect: reply_to_HLS_authentication (method 1) does int(e.parameters) on the octet
            # string (ValueError: every pass 3 fails); a wrong f(StoC) is answered "success" without
            # data instead of a refusal; with HLS-GMAC f(CtoS) carries the server's current
            # invocation counter, which the ciphered ACTION-Response carrying it then uses again
            # (the same GCM IV twice); with HLS-SHA256 it hashes the bare secret instead of
            # secret || system titles || challenges; mechanism 7 (ECDSA) raises "not implemented".
            # Checked and answered here (mechanisms 3-7; 7 with GXEcdsa, P-256 only, and the
            # byte order of Gurux's client: f(StoC) over ST-C || ST-S || StoC || CtoS, f(CtoS) over
            # ST-S || ST-C || CtoS || StoC).
            if e.index != 1 or settings.authentication not in HLS_MECHANISMS:
                return super().invoke(settings, e)
            from gurux_dlms.GXSecure import GXSecure
            from gurux_dlms.objects.enums import AssociationStatus
            mechanism, reply = settings.authentication, bytes(e.parameters or b"")
            stoc, ctos = bytes(settings.stoCChallenge), bytes(settings.getCtoSChallenge())
            client_title = bytes(settings.sourceSystemTitle or b"")
            server_title = bytes(settings.cipher.systemTitle) if settings.cipher else b""
            secret = self.hls_secret

            if mechanism == Authentication.HIGH_ECDSA:
                from gurux_dlms.ecdsa.GXEcdsa import GXEcdsa
                signing_key, client_key = self.ecdsa_keys or (None, None)
                valid = False
                if client_key is not None and len(reply) == 64:
                    valid = GXEcdsa(client_key).verify(reply, client_title + server_title + stoc + ctos)
                if not valid:
                    log("HLS-ECDSA: the client's f(StoC) does not verify")
                    self.associationStatus = AssociationStatus.NON_ASSOCIATED
                    e.error = ErrorCode.READ_WRITE_DENIED
                    return None
                self.associationStatus = AssociationStatus.ASSOCIATED
                e.byteArray = True
                answer = bytes(GXEcdsa(signing_key).sign(server_title + client_title + ctos + stoc))
                return bytes([0x09, len(answer)]) + answer

            def f(challenge, other, own_title, peer_title, ic):
                if mechanism == Authentication.HIGH_GMAC:
                    return bytes(GXSecure.secure(settings, settings.cipher, ic, challenge, own_title))
                if mechanism == Authentication.HIGH_SHA256:   # Green Book: secret || ST-own || ST-peer || challenges
                    return hashlib.sha256(secret + own_title + peer_title + challenge + other).digest()
                return bytes(GXSecure.secure(settings, settings.cipher, 0, challenge, secret))

            if mechanism == Authentication.HIGH_GMAC:
                ic = int.from_bytes(reply[1:5], "big") if len(reply) == 17 else 0
            else:
                ic = 0
            if not reply or reply != f(stoc, ctos, client_title, server_title, ic):
                log("HLS %s: wrong f(StoC) from the client" % mechanism)
                self.associationStatus = AssociationStatus.NON_ASSOCIATED
                e.error = ErrorCode.READ_WRITE_DENIED
                return None
            ic = 0
            if mechanism == Authentication.HIGH_GMAC:
                ic = settings.cipher.invocationCounter
                settings.cipher.invocationCounter = ic + 1
            self.associationStatus = AssociationStatus.ASSOCIATED
            e.byteArray = True
            answer = f(ctos, stoc, server_title, client_title, ic)
            return bytes([0x09, len(answer)]) + answer

        # Defect: handleMethodRequest then calls obj.getAssociationStatus(),
        # server.notifyConnected() and settings.setConnected(), none of which exist.
        def getAssociationStatus(self):
            return self.associationStatus

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

    if secure:
        from gurux_dlms.secure import GXDLMSSecureServer as Base
        patch_secure_server()
    else:
        Base = GXDLMSServer

    class Meter(Base):
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
            self.assoc.hls_secret = args.hls_secret.encode()
            self.assoc.ecdsa_keys = None
            if args.ecdsa_signing_key and args.ecdsa_client_public_key:
                from gurux_dlms.ecdsa.GXPrivateKey import GXPrivateKey
                from gurux_dlms.ecdsa.GXPublicKey import GXPublicKey
                self.assoc.ecdsa_keys = (GXPrivateKey.fromRawBytes(bytes.fromhex(args.ecdsa_signing_key)),
                                         GXPublicKey.fromRawBytes(bytes.fromhex(args.ecdsa_client_public_key)))
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
            objects = [self.assoc, self.clock, self.ldn, self.r1, self.r2, self.status, self.disconnect, self.profile]
            self.secure = secure
            if secure:
                self._init_security(args)
                objects.append(self.counter)
            for o in objects:
                self.items.append(o)
            # Defect: initialize() appends the whole collection to an empty association object
            # list as ONE element; fill the list first so it is left alone.
            for o in self.items:
                self.assoc.objectList.append(o)
            self.initialize()

        def now(self):
            return self.fixed_now or datetime.datetime.now(UTC)

        # --- security (--secure)
        def _init_security(self, args):
            from gurux_dlms.GXCiphering import GXCiphering
            title = bytes.fromhex(args.system_title) if args.system_title else b"GRX" + args.physical.to_bytes(5, "big")
            cipher = GXCiphering(bytearray(title))
            cipher.blockCipherKey = bytearray.fromhex(args.block_cipher_key)
            cipher.authenticationKey = bytearray.fromhex(args.auth_key)
            # Defect: GXDLMSSecureServer.__init__ stores its GXCiphering as settings.ciphering, but
            # everything else reads settings.cipher (None): nothing would be ciphered or deciphered.
            self.settings.cipher = cipher
            if args.ecdsa_signing_key:
                # HLS-ECDSA with P-256 keys is security suite 1 (AES-GCM-128): every security
                # control byte says so (0x31, 0x21 …), and Gurux answers with its configured suite.
                from gurux_dlms.objects.enums import SecuritySuite
                cipher.securitySuite = SecuritySuite.SUITE_1
                # Defect: _GXAPDU (the AARE's glo-initiate-response) and GXDLMS (service answers)
                # build their AesGcmParameter without the cipher's suite, so they would say suite 0.
                suite = cipher.securitySuite
                encrypt = GXCiphering.encrypt.__func__

                def encrypt_in_suite(cls, p, data):
                    p.securitySuite = suite
                    return encrypt(cls, p, data)
                GXCiphering.encrypt = classmethod(encrypt_in_suite)
            self.settings.rx_guard = {"last": 0, "failure": None}
            meter = self

            class InvocationCounter(GXDLMSData):
                def getValue(self, settings, e):
                    if e.index == 2:
                        return meter.settings.rx_guard["last"]
                    return super().getValue(settings, e)
            self.counter = InvocationCounter("0.0.43.1.0.255")
            self.counter.setDataType(2, DataType.UINT32)

        # --- addressing / authentication
        def isTarget(self, serverAddress, clientAddress):
            ok_client = clientAddress in ((1, 16, 17) if self.secure else (16, 17))
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
            if client == 1 and self.secure and authentication in HLS_MECHANISMS:
                return SourceDiagnostic.NONE   # pass 3/4 (reply_to_HLS_authentication) follows
            if client == 1 and authentication == Authentication.NONE:
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
            if self.secure and self.settings.rx_guard["failure"]:
                return self._security_failure()
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

        def _security_failure(self):
            # exception-response (Green Book): service-not-allowed with deciphering-error, or
            # invocation-counter-error and the counter the meter expects to be exceeded.
            kind, reason = self.settings.rx_guard["failure"]
            self.settings.rx_guard["failure"] = None
            log("refused a ciphered request: %s" % reason)
            self.transaction = None
            self.replyData.clear()
            if kind == "counter":
                apdu = bytes([0xD8, 0x01, 0x06]) + self.settings.rx_guard["last"].to_bytes(4, "big")
            else:
                apdu = bytes([0xD8, 0x01, 0x05])
            if self.settings.interfaceType == InterfaceType.HDLC:
                self.replyData.set(_GXCommon.LLC_REPLY_BYTES)
            self.replyData.set(apdu)
            if self.settings.interfaceType == InterfaceType.WRAPPER:
                return GXDLMS.getWrapperFrame(self.settings, 0xD8, self.replyData)
            return GXDLMS.getHdlcFrame(self.settings, 0, self.replyData)   # 0: next N(S), and N(R) acknowledges the request

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
            return GXDLMS.getHdlcFrame(self.settings, 0, self.replyData)   # 0: next N(S), and N(R) acknowledges the request

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
        def notifyConnected(self, connectionInfo): self.onConnected(connectionInfo)
        def onInvalidConnection(self, connectionInfo): log("invalid connection")
        def onDisconnected(self, connectionInfo): log("released")
        def onGetAttributeAccess(self, arg):
            return AccessMode.READ_WRITE
        def onGetMethodAccess(self, arg): return MethodAccessMode.ACCESS
        def onPreAction(self, args): pass
        def onPostAction(self, args): pass

        def reset(self, connected=False):
            # Defect: reset() (every AARQ over the wrapper, every new connection) calls
            # cipher.reset(), which sets the server's own invocation counter back to 0: the
            # meter then reused GCM IVs association after association. Keep the counter.
            cipher = self.settings.cipher if getattr(self, "secure", False) else None
            counter = cipher.invocationCounter if cipher else 0
            super().reset(connected)
            if cipher:
                cipher.invocationCounter = counter

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
    Meter, GXServerReply = build_server_classes(args.secure)
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
    sys.stdout = sys.stderr   # Gurux print()s "Encryption is applied." etc. on every deciphered APDU
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
    ap.add_argument("--secure", action="store_true", help="GXDLMSSecureServer: client 1 = HLS-GMAC, ciphered (suite 0)")
    ap.add_argument("--block-cipher-key", default="000102030405060708090A0B0C0D0E0F", help="EK (hex) with --secure")
    ap.add_argument("--auth-key", default="D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", help="AK (hex) with --secure")
    ap.add_argument("--system-title", help="server system title (hex, 8 bytes); default GRX + physical address")
    ap.add_argument("--hls-secret", default="Gurux", help="HLS MD5/SHA-1/SHA-256 secret of client 1 with --secure")
    ap.add_argument("--ecdsa-signing-key", help="HLS-ECDSA (P-256) with --secure: the meter's private key, raw hex")
    ap.add_argument("--ecdsa-client-public-key", help="HLS-ECDSA with --secure: the client's public key, hex 04|x|y")
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
