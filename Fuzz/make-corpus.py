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

for target, seeds in (("FuzzAPDU", apdus), ("FuzzData", data), ("FuzzACSE", acse)):
    d = os.path.join(here, "Corpus", target)
    os.makedirs(d, exist_ok=True)
    for s in seeds:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()[:16]), "wb") as f:
            f.write(s)
    print(target, len(os.listdir(d)))
