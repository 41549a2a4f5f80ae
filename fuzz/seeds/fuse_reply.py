#!/usr/bin/env python3
"""Writes the seeds of fuzz/corpus/fuse_reply: for each file operation the
fuzz target makes, the replies a FUSE server (libfuse 3, as fuse2fs answers
on an ext4 image) sends for the requests it causes, in the target's input
format (a selector byte, then each reply as a little-endian u16 length and
the reply message, fuse_out_header included; the target fills in the
request numbers). Usage: fuse_reply.py OUTDIR"""
import os
import struct
import sys

S_IFREG, S_IFDIR, S_IFLNK = 0o100000, 0o040000, 0o120000
ENOENT, ENODATA, ENOSYS, EEXIST = 2, 61, 38, 17


def reply(body=b"", error=0):
    return struct.pack("<IiQ", 16 + len(body), error, 0) + body


def attr(ino, mode, size=0, nlink=1):
    t = 1700000000
    return struct.pack("<QQQQQQIIIIIIIIII", ino, size, (size + 511) // 512,
                       t, t, t, 0, 0, 0, mode, nlink, 1000, 1000, 0, 4096, 0)


def entry(ino, mode, size=0):
    # nodeid, generation, entry_valid, attr_valid, their nsec, then attr
    return reply(struct.pack("<QQQQII", ino, 0, 1, 1, 0, 0) + attr(ino, mode, size))


def attr_out(ino, mode, size=0):
    return reply(struct.pack("<QII", 1, 0, 0) + attr(ino, mode, size))


def open_out(fh):
    return reply(struct.pack("<QII", fh, 0, 0))


def dirents(names):
    out = b""
    for i, (ino, name, kind) in enumerate(names):
        n = name.encode()
        rec = struct.pack("<QQII", ino, i + 1, len(n), kind) + n
        out += rec + b"\0" * (-len(rec) % 8)
    return reply(out)


def init_7_31():
    # major, minor, max_readahead, flags, max_background, congestion,
    # max_write, time_gran, max_pages, map_alignment, flags2, unused
    body = struct.pack("<IIIIHHIIHHI", 7, 31, 131072, 0x0040_0021, 12, 9,
                       131072, 1, 32, 0, 0) + b"\0" * 28
    return reply(body)


def seed(selector, replies):
    out = bytes([selector])
    for r in replies:
        out += struct.pack("<H", len(r)) + r
    return out


FILE = entry(12, S_IFREG | 0o644, 5)
DIR = entry(2, S_IFDIR | 0o755)
SEEDS = {
    "lstat": seed(0, [DIR, FILE, attr_out(12, S_IFREG | 0o644, 5)]),
    "lstat-enoent": seed(0, [reply(error=-ENOENT)]),
    "open-read": seed(1, [FILE, open_out(1), reply(b"hello"), reply(b""),
                          attr_out(12, S_IFREG | 0o644, 5), reply()]),
    "init-then-open-read": seed(0x81, [init_7_31(), FILE, open_out(1), reply(b"hello"),
                                       reply(b"")]),
    "readdir": seed(2, [DIR, open_out(7),
                        dirents([(2, ".", 4), (1, "..", 4), (12, "f", 8), (13, "lost+found", 4)]),
                        reply(b""), reply()]),
    "statfs": seed(3, [attr_out(1, S_IFDIR | 0o755),
                       reply(struct.pack("<QQQQQIIIIII", 1024, 900, 850, 256, 240, 4096, 255, 4096,
                                         0, 0, 0) + b"\0" * 24)]),
    "getxattr": seed(4, [FILE, reply(struct.pack("<II", 3, 0)), reply(b"abc")]),
    "getxattr-enodata": seed(4, [FILE, reply(error=-ENODATA)]),
    "listxattr": seed(5, [FILE, reply(struct.pack("<II", 16, 0)), reply(b"user.a\0user.bc\0\0")]),
    "readlink": seed(6, [entry(14, S_IFLNK | 0o777, 6), reply(b"target")]),
    "access-enosys": seed(7, [FILE, reply(error=-ENOSYS), attr_out(12, S_IFREG | 0o644, 5)]),
    "create-write": seed(8, [reply(error=-ENOENT),
                             entry(20, S_IFREG | 0o644) + struct.pack("<QII", 3, 0, 0),
                             reply(struct.pack("<II", 5, 0)), reply(b"hello"),
                             attr_out(20, S_IFREG | 0o644, 1), reply(), reply()]),
    "mkdir": seed(9, [DIR, reply(error=-ENOENT), entry(21, S_IFDIR | 0o755)]),
    "mkdir-eexist": seed(9, [DIR, entry(21, S_IFDIR | 0o755)]),
    "rename": seed(10, [entry(22, S_IFREG | 0o644), reply(error=-ENOSYS), reply()]),
    "setattr": seed(11, [FILE, attr_out(12, S_IFREG | 0o600, 5), attr_out(12, S_IFREG | 0o600, 5),
                         attr_out(12, S_IFREG | 0o600, 5), attr_out(12, S_IFREG | 0o600, 10)]),
    "unlink-rmdir": seed(12, [FILE, reply(), DIR, reply()]),
    "symlink": seed(13, [reply(error=-ENOENT), entry(23, S_IFLNK | 0o777, 6)]),
    "link": seed(14, [FILE, reply(error=-ENOENT), entry(12, S_IFREG | 0o644, 5)]),
    "mknod-xattrs": seed(15, [reply(error=-ENOENT), entry(24, 0o010644), FILE, reply(), reply()]),
    "human-lstat": seed(0x40, [attr_out(1, S_IFDIR | 0o755), DIR, attr_out(2, S_IFDIR | 0o755),
                               FILE, attr_out(12, S_IFREG | 0o644, 5)]),
    "bad-lengths": seed(0, [struct.pack("<IiQ", 100, 0, 0) + b"x" * 8, reply(error=-5000)]),
}
# A reply sent with the top bit of its length set goes out as written
# (here: a notification with unique 0 before the real answer).
notif = struct.pack("<IiQ", 16, 1, 0)
SEEDS["notification-first"] = (bytes([0]) + struct.pack("<H", 0x8000 | len(notif)) + notif
                               + struct.pack("<H", len(DIR)) + DIR)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
