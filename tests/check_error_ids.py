#!/usr/bin/env python3
"""Every error id thrown under include/ is documented in docs/errors.md, and every id documented
there is thrown somewhere (so the table can drift in neither direction).

Usage: check_error_ids.py REPO_ROOT
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
thrown = {}
# A throw site names the id as the first argument: FormatError("wav.3", ...), possibly wrapped.
pattern = re.compile(r'\b(?:Error|ShapeError|ValueError|FormatError|IoError|CudaError)\(\s*"([a-z_0-9]+\.[0-9]+)"')
# Shared checks take their ids as a braced pair: checked_lengths(..., {"sequence.2", "sequence.3"}).
pair = re.compile(r'\{\s*"([a-z_0-9]+\.[0-9]+)",\s*"([a-z_0-9]+\.[0-9]+)"\s*\}')
for path in sorted((root / "include").rglob("*")):
    if path.suffix in (".hpp", ".cuh"):
        text = path.read_text()
        for m in pattern.finditer(text):
            thrown.setdefault(m.group(1), path.relative_to(root))
        for m in pair.finditer(text):
            for i in m.groups():
                thrown.setdefault(i, path.relative_to(root))
documented = set(re.findall(r"`asrkit\.([a-z_0-9]+\.[0-9]+)`", (root / "docs" / "errors.md").read_text()))
missing = sorted(set(thrown) - documented)
stale = sorted(documented - set(thrown))
for i in missing:
    print(f"undocumented error id asrkit.{i} (thrown in {thrown[i]}): add it to docs/errors.md")
for i in stale:
    print(f"docs/errors.md lists asrkit.{i} but nothing throws it")
print(f"{len(thrown)} error ids thrown, {len(documented)} documented")
sys.exit(1 if missing or stale else 0)
