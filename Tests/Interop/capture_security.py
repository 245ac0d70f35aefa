#!/usr/bin/env python3
"""Security vectors from two independent implementations: Gurux (PyPI gurux-dlms) and dlms-cosem.

- Gurux's GXDLMSChippering.encryptAesGcm protects plain APDUs (Gurux's own captures from
  Tests/DLMSCodecTests/GuruxVectors.swift plus the Green Book initiate-request) as whole
  glo-/ded-/general-glo/general-ded APDUs, for security controls 0x10, 0x20 and 0x30, with the
  glo-/ded- tag chosen by Gurux's GXDLMS.getGloMessage/getDedMessage.
- dlms-cosem's security.encrypt (authenticated encryption) produces the payload after SC ‖ IC.
- HLS replies: Gurux's GXDLMSSecureClient.getApplicationAssociationRequest computes f(StoC) for
  mechanisms 3 (MD5), 4 (SHA-1), 5 (GMAC) and 6 (SHA-256); the server's f(CtoS) is the same
  client code with the roles swapped (own/peer titles and challenges exchanged). dlms-cosem's
  HighLevelSecurityGmacAuthentication computes the GMAC reply too.
- Suites 1 and 2 (their AES-GCM ciphering; suite 2 with 32-byte keys): Gurux APDUs, dlms-cosem
  payloads and Gurux HLS-GMAC replies.
- A Gurux client's ciphered association: the AARQ with an HLS-GMAC challenge and a
  glo-initiate-request, and a glo-get-request for the clock.

The output is a Swift source file, committed so `swift test` needs neither Python nor the network.
Usage: Tests/Interop/generate-security.sh (creates the venv, runs this, writes the fixture)
"""
import re
import sys
from importlib.metadata import version
from pathlib import Path

from gurux_dlms.secure import GXDLMSSecureClient
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.CountType import CountType
from gurux_dlms.GXDLMS import GXDLMS
from gurux_dlms.GXDLMSChippering import GXDLMSChippering
from gurux_dlms.enums import InterfaceType, Authentication, Security, Command
from gurux_dlms.objects import GXDLMSClock

from dlms_cosem import security as dc_security
from dlms_cosem.security import SecurityControlField

HERE = Path(__file__).resolve().parent

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")

# Plain APDUs Gurux produced (Tests/DLMSCodecTests/GuruxVectors.swift) and the Green Book's
# initiate-request with a dedicated key.
PLAIN_NAMES = [
    ("get.clock.request", "none.get.clock.time.request"),
    ("get.clock.response", "none.get.clock.time.response"),
    ("get.register.response", "none.get.register.value.response"),
    ("get.profile.response", "none.get.profile.buffer.response"),
    ("get.with_list.request", "none.get.with_list.request"),
    ("set.clock.request", "none.set.clock.time.request"),
    ("set.response", "none.set.clock.time.response"),
    ("action.disconnect.request", "none.action.disconnect.remote_disconnect.request"),
    ("action.response", "none.action.disconnect.remote_disconnect.response"),
]
INITIATE_REQUEST = bytes.fromhex("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")

SECURITIES = [(0x10, Security.AUTHENTICATION), (0x20, Security.ENCRYPTION), (0x30, Security.AUTHENTICATION_ENCRYPTION)]


def gurux_plain_apdus():
    text = (HERE.parent / "DLMSCodecTests" / "GuruxVectors.swift").read_text()
    found = dict(re.findall(r'\("([^"]+)", "([0-9A-F]+)"\)', text))
    apdus = [(name, bytes.fromhex(found[source])) for name, source in PLAIN_NAMES]
    apdus.append(("initiate.request", INITIATE_REQUEST))
    return apdus


def gurux_tag(kind, plain_tag):
    if kind == "generalGlobal":
        return Command.GENERAL_GLO_CIPHERING
    if kind == "generalDedicated":
        return Command.GENERAL_DED_CIPHERING
    if plain_tag == Command.INITIATE_REQUEST:
        return Command.GLO_INITIATE_REQUEST if kind == "global" else Command.DED_INITIATE_REQUEST
    return GXDLMS.getGloMessage(plain_tag) if kind == "global" else GXDLMS.getDedMessage(plain_tag)


def gurux_protect(kind, plain, security, ic, title):
    key = DK if kind in ("dedicated", "generalDedicated") else EK
    p = AesGcmParameter(gurux_tag(kind, plain[0]), title, key, AK)
    p.security = security
    p.invocationCounter = ic
    p.type_ = CountType.PACKET
    return bytes(GXDLMSChippering.encryptAesGcm(p, plain))


def cipher_vectors():
    rows = []
    counter = 0x00010000
    for name, plain in gurux_plain_apdus():
        # Requests come from the client, responses from the server: the sender's title is the IV's.
        title = CLIENT_TITLE if name.endswith("request") else SERVER_TITLE
        for kind in ("global", "dedicated", "generalGlobal", "generalDedicated"):
            if name == "initiate.request" and kind.startswith("general"):
                continue
            for sc, security in SECURITIES:
                counter += 0x0101
                ciphered = gurux_protect(kind, plain, security, counter, title)
                rows.append((f"gurux.{kind}.{sc:02X}.{name}", kind, sc, counter, title, plain, ciphered))
    return rows


def dlms_cosem_vectors():
    rows = []
    counter = 0x20000000
    sc = SecurityControlField(security_suite=0, authenticated=True, encrypted=True)
    for name, plain in gurux_plain_apdus():
        title = CLIENT_TITLE if name.endswith("request") else SERVER_TITLE
        counter += 17
        payload = dc_security.encrypt(security_control=sc, system_title=title, invocation_counter=counter,
                                      key=EK, plain_text=plain, auth_key=AK)
        rows.append((f"dlms_cosem.global.30.{name}", "global", 0x30, counter, title, plain, bytes(payload)))
    return rows


def gurux_hls_reply(mechanism, password, own_title, peer_title, own_challenge, peer_challenge, ic, ek=EK, ak=AK, suite=0):
    """f(peer_challenge) as Gurux's client computes it in getApplicationAssociationRequest."""
    client = GXDLMSSecureClient(True, 16, 1, mechanism, password, InterfaceType.WRAPPER)
    client.settings.cipher.systemTitle = own_title
    client.settings.cipher.blockCipherKey = ek
    client.settings.cipher.authenticationKey = ak
    client.settings.cipher.securitySuite = suite
    client.settings.cipher.invocationCounter = ic
    client.settings.sourceSystemTitle = peer_title
    client.settings.ctoSChallenge = own_challenge
    client.settings.stoCChallenge = peer_challenge
    frames = client.getApplicationAssociationRequest()
    apdu = bytes(frames[0])[8:]  # wrapper header
    # ... 09 <length> <f(challenge)> at the end of the action-request.
    for length in range(16, 40):
        if len(apdu) > length + 2 and apdu[-length - 2] == 0x09 and apdu[-length - 1] == length:
            return apdu[-length:]
    raise RuntimeError(f"no octet-string reply in {apdu.hex()}")


def hls_vectors():
    rows = []
    ctos = b"K56iVagY"
    stoc = b"P6wRJ21F"
    long_ctos = bytes(range(0x30, 0x30 + 32))
    long_stoc = bytes(range(0xA0, 0xA0 + 16))
    for mech_name, mechanism, password in [("md5", Authentication.HIGH_MD5, "Gurux"),
                                           ("sha1", Authentication.HIGH_SHA1, "Gurux"),
                                           ("sha256", Authentication.HIGH_SHA256, "Gurux"),
                                           ("gmac", Authentication.HIGH_GMAC, None)]:
        for suffix, c, s in [("", ctos, stoc), (".long", long_ctos, long_stoc)]:
            client_ic, server_ic = 0x00000001, 0x01234567
            f_stoc = gurux_hls_reply(mechanism, password, CLIENT_TITLE, SERVER_TITLE, c, s, client_ic)
            f_ctos = gurux_hls_reply(mechanism, password, SERVER_TITLE, CLIENT_TITLE, s, c, server_ic)
            rows.append((f"gurux.{mech_name}{suffix}", mech_name, (password or "").encode(), c, s, client_ic, server_ic, f_stoc, f_ctos))
    # dlms-cosem's GMAC reply (pass 3) for the Green Book material.
    sc = SecurityControlField(security_suite=0, authenticated=True, encrypted=False)
    tag = dc_security.gmac(security_control=sc, system_title=CLIENT_TITLE, invocation_counter=1, key=EK, auth_key=AK, challenge=stoc)
    tag2 = dc_security.gmac(security_control=sc, system_title=SERVER_TITLE, invocation_counter=0x01234567, key=EK, auth_key=AK, challenge=ctos)
    rows.append(("dlms_cosem.gmac", "gmac", b"", ctos, stoc, 1, 0x01234567,
                 sc.to_bytes() + (1).to_bytes(4, "big") + tag, sc.to_bytes() + (0x01234567).to_bytes(4, "big") + tag2))
    return rows


# Suites 1 and 2 cipher like suite 0 (suite 2 with AES-256 and 32-byte keys).
SUITE_KEYS = {1: (EK, AK), 2: (bytes(range(0x00, 0x20)), bytes(range(0xD0, 0xF0)))}


def suite_vectors():
    """Gurux (whole APDUs) and dlms-cosem (payloads, SC 0x3n) for suites 1 and 2."""
    rows = []
    apdus = dict(gurux_plain_apdus())
    counter = 0x00300000
    for suite, (ek, ak) in SUITE_KEYS.items():
        for name in ("get.clock.request", "get.profile.response"):
            plain = apdus[name]
            title = CLIENT_TITLE if name.endswith("request") else SERVER_TITLE
            for kind in ("global", "generalGlobal"):
                for sc, security in SECURITIES:
                    counter += 0x0101
                    p = AesGcmParameter(gurux_tag(kind, plain[0]), title, ek, ak)
                    p.security = security
                    p.securitySuite = suite
                    p.invocationCounter = counter
                    p.type_ = CountType.PACKET
                    ciphered = bytes(GXDLMSChippering.encryptAesGcm(p, plain))
                    rows.append((f"gurux.suite{suite}.{kind}.{sc | suite:02X}.{name}", suite, kind, sc | suite, counter, title, ek, ak, plain, ciphered))
            counter += 0x0101
            control = SecurityControlField(security_suite=suite, authenticated=True, encrypted=True)
            payload = dc_security.encrypt(security_control=control, system_title=title, invocation_counter=counter,
                                          key=ek, plain_text=plain, auth_key=ak)
            rows.append((f"dlms_cosem.suite{suite}.payload.{0x30 | suite:02X}.{name}", suite, "payload", 0x30 | suite, counter, title, ek, ak, plain, bytes(payload)))
        # HLS-GMAC replies of the suite (SC 0x1n), both directions, Green Book challenges.
        f_stoc = gurux_hls_reply(Authentication.HIGH_GMAC, None, CLIENT_TITLE, SERVER_TITLE, b"K56iVagY", b"P6wRJ21F", 1, ek, ak, suite)
        f_ctos = gurux_hls_reply(Authentication.HIGH_GMAC, None, SERVER_TITLE, CLIENT_TITLE, b"P6wRJ21F", b"K56iVagY", 0x01234567, ek, ak, suite)
        rows.append((f"gurux.suite{suite}.hls_gmac.fStoC", suite, "hlsGMAC", 0x10 | suite, 1, CLIENT_TITLE, ek, ak, b"P6wRJ21F", f_stoc))
        rows.append((f"gurux.suite{suite}.hls_gmac.fCtoS", suite, "hlsGMAC", 0x10 | suite, 0x01234567, SERVER_TITLE, ek, ak, b"K56iVagY", f_ctos))
    return rows


def gurux_client_session():
    """A Gurux client's HLS-GMAC, authenticated-and-encrypted AARQ and first glo-get-request."""
    client = GXDLMSSecureClient(True, 16, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
    client.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
    client.settings.cipher.systemTitle = CLIENT_TITLE
    client.settings.cipher.blockCipherKey = EK
    client.settings.cipher.authenticationKey = AK
    client.settings.cipher.invocationCounter = 0x00000100
    client.settings.sourceSystemTitle = SERVER_TITLE
    aarq = bytes(client.aarqRequest()[0])[8:]
    ctos = bytes(client.settings.ctoSChallenge)
    get = bytes(client.read(GXDLMSClock("0.0.1.0.0.255"), 2)[0])[8:]
    return [("gurux.session.aarq", aarq), ("gurux.session.get.clock", get), ("gurux.session.ctos", ctos)]


def swift_bytes(b):
    return '"' + bytes(b).hex().upper() + '"'


def main():
    out = []
    out.append(f"// Generated by Tests/Interop/capture_security.py with gurux-dlms {version('gurux-dlms')} and dlms-cosem {version('dlms-cosem')}; do not edit.")
    out.append("// Keys: EK 000102…0F, AK D0D1…DF, dedicated key 0011…EEFF (the Green Book's); client title 4D4D4D0000000001,")
    out.append("// server title 4D4D4D0000BC614E. Requests are sent by the client, responses by the server.")
    out.append("")
    out.append("/// Ciphered APDUs: the sender's title and counter, the plain APDU and the whole ciphered APDU")
    out.append("/// (dlms-cosem rows: the payload after SC ‖ IC only).")
    out.append("let securityCipherVectors: [(name: String, kind: String, securityControl: UInt8, invocationCounter: UInt32, systemTitle: String, plain: String, ciphered: String)] = [")
    for name, kind, sc, ic, title, plain, ciphered in cipher_vectors() + dlms_cosem_vectors():
        out.append(f'    ("{name}", "{kind}", 0x{sc:02X}, 0x{ic:08X}, {swift_bytes(title)}, {swift_bytes(plain)}, {swift_bytes(ciphered)}),')
    out.append("]")
    out.append("")
    out.append("/// HLS: the secret, CtoS, StoC, the counters, the client's f(StoC) and the server's f(CtoS).")
    out.append("let securityHLSVectors: [(name: String, mechanism: String, secret: String, ctos: String, stoc: String, clientCounter: UInt32, serverCounter: UInt32, fStoC: String, fCtoS: String)] = [")
    for name, mech, secret, c, s, cic, sic, f_stoc, f_ctos in hls_vectors():
        out.append(f'    ("{name}", "{mech}", {swift_bytes(secret)}, {swift_bytes(c)}, {swift_bytes(s)}, 0x{cic:08X}, 0x{sic:08X}, {swift_bytes(f_stoc)}, {swift_bytes(f_ctos)}),')
    out.append("]")
    out.append("")
    out.append("/// Suites 1 and 2 (the AES-GCM part): keys per row; kind \"payload\" = dlms-cosem's payload after SC ‖ IC,")
    out.append("/// \"hlsGMAC\" = Gurux's HLS-GMAC reply of the sender (plain = the challenge it answers).")
    out.append("let securitySuiteVectors: [(name: String, suite: UInt8, kind: String, securityControl: UInt8, invocationCounter: UInt32, systemTitle: String, blockCipherKey: String, authenticationKey: String, plain: String, ciphered: String)] = [")
    for name, suite, kind, sc, ic, title, ek, ak, plain, ciphered in suite_vectors():
        out.append(f'    ("{name}", {suite}, "{kind}", 0x{sc:02X}, 0x{ic:08X}, {swift_bytes(title)}, {swift_bytes(ek)}, {swift_bytes(ak)}, {swift_bytes(plain)}, {swift_bytes(ciphered)}),')
    out.append("]")
    out.append("")
    out.append("/// A Gurux client's HLS-GMAC association with authenticated encryption (wrapper header removed).")
    out.append("let securitySessionVectors: [(name: String, hex: String)] = [")
    for name, b in gurux_client_session():
        out.append(f'    ("{name}", {swift_bytes(b)}),')
    out.append("]")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
