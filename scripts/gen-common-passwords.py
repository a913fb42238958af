#!/usr/bin/env python3
"""Regenerates Sources/AtriumAuth/CommonPasswords.swift from a Django wheel.

    pip download --no-deps -d /tmp/dj 'django==5.2.*'
    python3 scripts/gen-common-passwords.py /tmp/dj/django-*.whl
"""
import gzip
import pathlib
import sys
import zipfile

wheel = zipfile.ZipFile(sys.argv[1])
name = next(n for n in wheel.namelist() if n.endswith("common-passwords.txt.gz"))
lines = [l.strip() for l in gzip.decompress(wheel.read(name)).decode().splitlines() if l.strip()]
assert not any('"###' in l for l in lines)
header = """// Generated from Django's common-passwords list (BSD-3-Clause, compiled by Royce Williams):
// the 19,640 most common passwords, lower-case, one per line. Embedded in the binary so a
// copied `atrium` executable needs no resource folder.
// Regenerate: see docs/THIRD-PARTY.md.

extension PasswordPolicy {
    static let commonPasswordText = ###\"\"\"
"""
out = header + "\n".join(lines) + '\n"""###\n}\n'
target = pathlib.Path(__file__).resolve().parent.parent / "Sources/AtriumAuth/CommonPasswords.swift"
target.write_text(out)
print(f"wrote {len(lines)} passwords to {target}")
