"""CRC32C (Castagnoli), as Cloud Storage reports it in x-goog-hash.

The standard library has only zlib's CRC-32 (IEEE), so this is a
table-driven CRC32C in pure Python, eight bytes a step (about 0.8 s for
5 MiB).  The fixture computes it once per write and keeps it in its
sidecar (gcs.py), never on reads.
"""

import base64
import struct

_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _tables():
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        previous = tables[-1]
        tables.append([(c >> 8) ^ first[c & 0xFF] for c in previous])
    return tables


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = _tables()


def update(crc, data):
    """Continue a CRC32C over data (start from 0)."""
    crc ^= 0xFFFFFFFF
    whole = len(data) // 8 * 8
    view = memoryview(data)
    for (word,) in struct.iter_unpack("<Q", view[:whole]):
        x = word ^ crc
        crc = (_T7[x & 0xFF] ^ _T6[(x >> 8) & 0xFF] ^
               _T5[(x >> 16) & 0xFF] ^ _T4[(x >> 24) & 0xFF] ^
               _T3[(x >> 32) & 0xFF] ^ _T2[(x >> 40) & 0xFF] ^
               _T1[(x >> 48) & 0xFF] ^ _T0[x >> 56])
    for byte in view[whole:]:
        crc = (crc >> 8) ^ _T0[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def b64(data):
    """Base64 of the big-endian CRC32C of data, as x-goog-hash has it."""
    return base64.b64encode(struct.pack(">I", update(0, data))).decode()


def b64_of_file(path, chunk=8 * 1024 * 1024):
    crc = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            crc = update(crc, block)
    return base64.b64encode(struct.pack(">I", crc)).decode()
