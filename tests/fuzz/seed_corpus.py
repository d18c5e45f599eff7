#!/usr/bin/env python3
"""Writes every test vector of docs/protocol.md as one file of a libFuzzer seed corpus."""
import pathlib, re, sys

doc, out = pathlib.Path(sys.argv[1]).read_text(), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for name, hexdump in re.findall(r"^(?:Vector|Malformed) `(\w+)`[^\n]*:\n```\n(.*?)```", doc, re.M | re.S):
    (out / name).write_bytes(bytes.fromhex(hexdump))
