#!/usr/bin/env python3
"""Golden DLMS APDU captures from Gurux (PyPI gurux-dlms) talking to itself.

A GXDLMSClient and a GXDLMSServer exchange wrapper frames in memory; every APDU (wrapper
header stripped) is recorded with a name. The output is a Swift source file of test vectors,
committed so `swift test` needs neither Python nor the network.

Usage: Tests/Interop/generate.sh   (creates the venv, runs this, writes the fixture)
"""
import datetime
import sys

from gurux_dlms import GXDLMSClient, GXDLMSServer, GXReplyData, GXByteBuffer, GXDateTime, GXServerReply, GXDLMSTranslator
from gurux_dlms.enums import (InterfaceType, Authentication, DataType, ObjectType, Unit, AccessMode,
                              MethodAccessMode, SourceDiagnostic, Security, Conformance)
from gurux_dlms.objects import (GXDLMSClock, GXDLMSRegister, GXDLMSData, GXDLMSProfileGeneric, GXDLMSDisconnectControl,
                                GXDLMSAssociationLogicalName, GXDLMSObjectCollection, GXDLMSExtendedRegister,
                                GXDLMSDemandRegister)
from gurux_dlms.objects.enums import SortMethod

# gurux-dlms 1.0.203's server calls a setter its GXServerReply lacks.
if not hasattr(GXServerReply, "setReply"):
    GXServerReply.setReply = lambda self, value: setattr(self, "reply", value)
if not hasattr(GXServerReply, "getConnectionInfo"):
    from gurux_dlms.GXDLMSConnectionEventArgs import GXDLMSConnectionEventArgs
    GXServerReply.getConnectionInfo = lambda self: self.connectionInfo or GXDLMSConnectionEventArgs()

FIXED_TIME = datetime.datetime(2024, 11, 26, 16, 45, 0)


class Server(GXDLMSServer):
    def __init__(self, password=None, ciphered=False):
        super().__init__(True, InterfaceType.WRAPPER)
        self.password = password
        self.settings.maxServerPDUSize = 1024
        assoc = GXDLMSAssociationLogicalName()
        if password:
            assoc.authenticationMechanismName.mechanismId = Authentication.LOW
            assoc.secret = password.encode()
        self.items.append(assoc)
        self.clock = GXDLMSClock("0.0.1.0.0.255")
        self.clock.time = GXDateTime(FIXED_TIME)
        self.clock.timeZone = 60
        self.items.append(self.clock)
        self.register = GXDLMSRegister("1.0.1.8.0.255")
        self.register.value = 12345678
        self.register.scaler = 0.001
        self.register.unit = Unit.ACTIVE_ENERGY
        self.items.append(self.register)
        self.register2 = GXDLMSRegister("1.0.2.8.0.255")
        self.register2.value = 42
        self.register2.unit = Unit.ACTIVE_ENERGY
        self.items.append(self.register2)
        self.serial = GXDLMSData("0.0.96.1.0.255")
        self.serial.value = "SIM00001"
        self.items.append(self.serial)
        self.disconnect = GXDLMSDisconnectControl("0.0.96.3.10.255")
        self.items.append(self.disconnect)
        self.profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        self.profile.capturePeriod = 900
        self.profile.sortMethod = SortMethod.FIFO
        self.profile.captureObjects.append((self.clock, _co(2, 0)))
        self.profile.captureObjects.append((self.register, _co(2, 0)))
        self.profile.captureObjects.append((self.register2, _co(2, 0)))
        for i in range(24):
            t = FIXED_TIME + datetime.timedelta(minutes=15 * i)
            self.profile.buffer.append([GXDateTime(t), 1000 + i, 2000 + 2 * i])
        self.profile.entriesInUse = len(self.profile.buffer)
        self.profile.profileEntries = 96
        self.items.append(self.profile)
        for it in self.items:  # gurux 1.0.203 initialize() appends the whole collection as one item
            assoc.objectList.append(it)
        self.initialize()

    def isTarget(self, serverAddress, clientAddress): return True
    def onValidateAuthentication(self, authentication, password):
        if authentication == Authentication.NONE:
            return SourceDiagnostic.NONE
        if self.password and password == self.password.encode():
            return SourceDiagnostic.NONE
        return SourceDiagnostic.AUTHENTICATION_FAILURE
    def onPreGet(self, args): pass
    def onPostGet(self, args): pass
    def onFindObject(self, objectType, sn, ln): return None
    def onPreRead(self, args=None): pass
    def onPostRead(self, args=None): pass
    def notifyRead(self, *args): pass
    def onPreWrite(self, args): pass
    def onPostWrite(self, args): pass
    def onConnected(self, connectionInfo): pass
    def onInvalidConnection(self, connectionInfo): pass
    def onDisconnected(self, connectionInfo): pass
    def onGetAttributeAccess(self, arg): return AccessMode.READ_WRITE
    def onGetMethodAccess(self, arg): return MethodAccessMode.ACCESS
    def onPreAction(self, args): pass
    def onPostAction(self, args): pass


def _co(attribute, data):
    from gurux_dlms.objects import GXDLMSCaptureObject
    return GXDLMSCaptureObject(attribute, data)


VECTORS = []


def strip(frame):
    frame = bytes(frame)
    assert frame[0:2] == b"\x00\x01", frame.hex()
    length = int.from_bytes(frame[6:8], "big")
    assert len(frame) == 8 + length
    return frame[8:]


def record(name, apdu):
    VECTORS.append((name, apdu.hex().upper()))


class Session:
    def __init__(self, server, client, prefix):
        self.server, self.client, self.prefix = server, client, prefix

    def exchange(self, name, frames, response_name=None, parse=None):
        """Sends each request frame to the server and records request and response APDUs."""
        reply = GXReplyData()
        if not isinstance(frames, list):
            frames = [frames]
        flat = []
        for f in frames:
            flat.extend(f if isinstance(f, list) else [f])
        frames = flat
        for i, frame in enumerate(frames):
            while True:
                suffix = "" if len(frames) == 1 else f"#{i}"
                record(f"{self.prefix}{name}.request{suffix}", strip(frame))
                sr = GXServerReply(bytearray(frame))
                self.server.handleRequest(sr)
                response = sr.reply
                record(f"{self.prefix}{response_name or name}.response{suffix}", strip(response))
                notify = GXReplyData()
                self.client.getData(GXByteBuffer(response), reply, notify)
                if reply.isMoreData():
                    frame = self.client.receiverReady(reply)
                    frames_name = name + ".next"
                    name = frames_name
                    continue
                break
        if parse:
            parse(reply)
        return reply


def session(prefix, password=None, authentication=Authentication.NONE, max_pdu=1024):
    server = Server(password=password)
    client = GXDLMSClient(True, 16, 1, authentication, password, InterfaceType.WRAPPER)
    client.setMaxReceivePDUSize(max_pdu)
    s = Session(server, client, prefix)
    s.exchange("aarq", client.aarqRequest(), "aare", parse=lambda r: client.parseAareResponse(r.data))
    return s


def main():
    # 1. No authentication: association, reads, writes, actions, release.
    s = session("none.")
    c = s.client
    srv = s.server
    s.exchange("get.clock.time", c.read(srv.clock, 2))
    s.exchange("get.clock.timezone", c.read(srv.clock, 3))
    s.exchange("get.register.value", c.read(srv.register, 2))
    s.exchange("get.register.scaler_unit", c.read(srv.register, 3))
    s.exchange("get.data.serial", c.read(srv.serial, 2))
    s.exchange("get.profile.capture_objects", c.read(srv.profile, 3))
    s.exchange("get.profile.buffer", c.read(srv.profile, 2))
    s.exchange("get.profile.by_entry", c.readRowsByEntry(srv.profile, 1, 4))
    s.exchange("get.profile.by_range", c.readRowsByRange(srv.profile, FIXED_TIME, FIXED_TIME + datetime.timedelta(hours=1)))
    s.exchange("get.with_list", c.readList([(srv.register, 2), (srv.clock, 2), (srv.serial, 2)]))
    s.exchange("get.undefined_object", c.read(GXDLMSData("0.0.96.1.9.255"), 2))
    srv.clock.time = GXDateTime(FIXED_TIME)
    s.exchange("set.clock.time", c.write(srv.clock, 2))
    srv.register2.value = 7
    s.exchange("set.register.value", c.write(srv.register2, 2))
    s.exchange("action.disconnect.remote_disconnect", srv.disconnect.remoteDisconnect(c))
    s.exchange("action.disconnect.remote_reconnect", srv.disconnect.remoteReconnect(c))
    s.exchange("action.register.reset", srv.register.reset(c))
    s.exchange("rlrq", c.releaseRequest(), "rlre")

    # 2. Small PDU size: GET with data blocks.
    s = session("block.", max_pdu=128)
    s.exchange("get.profile.buffer", s.client.read(s.server.profile, 2))

    # 3. Low-level security (password).
    s = session("lls.", password="12345678", authentication=Authentication.LOW)
    s.exchange("get.register.value", s.client.read(s.server.register, 2))
    s.exchange("rlrq", s.client.releaseRequest(), "rlre")

    # 4. Wrong password: rejected association.
    server = Server(password="12345678")
    client = GXDLMSClient(True, 16, 1, Authentication.LOW, "wrong", InterfaceType.WRAPPER)
    Session(server, client, "lls_rejected.").exchange("aarq", client.aarqRequest(), "aare")

    # 5. A data notification generated by the server side.
    server = Server()
    body = GXByteBuffer()
    body.setUInt8(DataType.STRUCTURE)
    body.setUInt8(2)
    server.addData(server.clock, 2, body)
    server.addData(server.register, 2, body)
    msgs = server.generateDataNotificationMessages(FIXED_TIME, body)
    for i, m in enumerate(msgs):
        record(f"push.data_notification#{i}", strip(m))

    out = ["// Generated by Tests/Interop/capture_gurux.py with gurux-dlms " + _version() + "; do not edit.",
           "// Each vector is an APDU Gurux produced (client requests, server responses), wrapper header removed.",
           "", "let guruxVectors: [(name: String, hex: String)] = ["]
    for name, hexstr in VECTORS:
        out.append(f'    ("{name}", "{hexstr}"),')
    out.append("]")
    sys.stdout.write("\n".join(out) + "\n")


def _version():
    try:
        from importlib.metadata import version
        return version("gurux-dlms")
    except Exception:
        return "unknown"


if __name__ == "__main__":
    main()
