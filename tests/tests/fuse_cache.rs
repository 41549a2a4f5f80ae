//! um-fuse's page cache end to end: a python script (and the programs it
//! starts: dd, sha256sum) reads, rereads, writes through other fds and
//! other processes, truncates, extends, maps, drops the cache
//! (`POSIX_FADV_DONTNEED`) and reads with `O_DIRECT` on
//! a `umfusereal` mount and on a `fuse2fs` mount (whose opens keep the
//! cache, `FOPEN_KEEP_CACHE`), and must print what it prints on a real
//! directory; a file changed behind the server's back is seen as kernel
//! FUSE would see it.

use viewos_tests::{
    python3, quote_path as q, run_native, shell_quote, view_command, Cmd, Mode, TempDir, TREE_SH,
};

/// Run as `python3 -c CACHE_PY DIR`: every fact on one line.
const CACHE_PY: &str = r#"
import hashlib, mmap, os, random, subprocess, sys
os.chdir(sys.argv[1])
def p(*a): print(*a, flush=True)
def h(b): return hashlib.sha256(b).hexdigest()[:16]
def pread_all(fd, n, off):
    out = b""
    while len(out) < n:
        b = os.pread(fd, n - len(out), off + len(out))
        if not b: break
        out += b
    return out
def read_seq(path, bs):
    out = []
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(bs)
            if not b: break
            out.append(b)
    return b"".join(out)
n = (9 << 20) + 12345
big = random.Random(7).randbytes(n)
with open("big", "wb") as f: f.write(big)
p("written", os.stat("big").st_size, h(big))
p("read 1M", h(read_seq("big", 1 << 20)))
p("reread 64K", h(read_seq("big", 65536)))
def short_reads(path, bs):
    with open(path, "rb", buffering=0) as f:
        lens = []
        while True:
            b = f.read(bs)
            if not b: break
            lens.append(len(b))
    return sum(1 for l in lens[:-1] if l != bs)
# No read comes back short before the end (tar -d takes it for an error).
p("short reads", short_reads("big", 10240), short_reads("big", 10240))
p("reread 1M", h(read_seq("big", 1 << 20)))
p("sha256sum", subprocess.run(["sha256sum", "big"], capture_output=True).stdout.split()[0][:16].decode())
p("dd", h(subprocess.run(["dd", "if=big", "bs=1M", "status=none"], capture_output=True).stdout))
r = os.open("big", os.O_RDONLY)
p("pread", h(pread_all(r, n + 10, 0)))
os.posix_fadvise(r, 0, 0, os.POSIX_FADV_DONTNEED)
p("dropped", h(pread_all(r, n + 10, 0)), h(read_seq("big", 1 << 20)))
p("past eof", os.pread(r, 10, n + 100), os.pread(r, 10, n), len(os.pread(r, 100, n - 5)))
# Writes through another fd are seen through the first.
w = os.open("big", os.O_WRONLY)
os.pwrite(w, b"NEW" * 1000, 5 << 20)
p("after write", os.pread(r, 8, (5 << 20) - 2), h(pread_all(r, n, 0)))
os.pwrite(w, b"tail", n)
p("extended", os.fstat(r).st_size, os.pread(r, 10, n - 4))
# And by another process.
subprocess.run(["dd", "of=big", "bs=1", "seek=100", "conv=notrunc", "status=none"], input=b"OTHERPROC", check=True)
p("other process", os.pread(r, 12, 99), h(read_seq("big", 1 << 20)))
# Truncates through another fd and by path; extension reads zeros.
os.ftruncate(w, 1000)
p("truncated", os.fstat(r).st_size, len(pread_all(r, 5000, 0)), os.pread(r, 10, 995))
os.ftruncate(w, 3000)
p("extended zeros", os.pread(r, 20, 990))
os.truncate("big", 100)
p("path truncate", len(pread_all(r, 5000, 0)), os.pread(r, 10, 95))
with open("big", "wb") as f: f.write(big[:4 << 20])
p("rewritten", h(read_seq("big", 1 << 20)), h(pread_all(r, n, 0)))
os.close(w)
os.close(r)
# A write through a mapping reaches read(2).
with open("m", "wb") as f: f.write(b"a" * (1 << 20))
r = os.open("m", os.O_RDONLY)
p("m", h(pread_all(r, 1 << 20, 0)))
with open("m", "r+b") as f:
    mm = mmap.mmap(f.fileno(), 0)
    mm[1000:1005] = b"MMAPW"
    mm.flush()
    mm.close()
p("mmap", os.pread(r, 7, 999), h(read_seq("m", 4096)))
# O_DIRECT reads and writes.
subprocess.run(["dd", "of=m", "bs=4096", "seek=1", "count=1", "oflag=direct", "conv=notrunc", "status=none"], input=b"D" * 4096, check=True)
p("direct write", os.pread(r, 3, 4095))
d = subprocess.run(["dd", "if=m", "bs=4096", "iflag=direct", "status=none"], capture_output=True).stdout
p("direct read", len(d), h(d), h(read_seq("m", 1 << 20)))
os.close(r)
"#;

fn python_script(dir: &str) -> String {
    format!(
        "{py} -c {code} {dir}",
        py = q(&python3()),
        code = shell_quote(CACHE_PY)
    )
}

fn native_output(t: &TempDir) -> String {
    let dir = t.mkdir("native");
    let out = Cmd::bash(&python_script(&q(&dir))).run(Mode::Native);
    out.assert_ok();
    out.out()
}

#[test]
fn the_cache_never_shows_stale_bytes_on_umfusereal() {
    let t = TempDir::new("fuse-cache-real");
    let native = native_output(&t);
    for mode in Mode::VIEWS {
        let (src, mnt) = (t.mkdir(format!("src-{}", mode.tag())), t.mkdir("mnt"));
        let script = format!(
            "{vm} -t umfusereal {s} {m} || exit 1\n{py}",
            vm = q(&view_command("viewmount")),
            s = q(&src),
            m = q(&mnt),
            py = python_script(&q(&mnt)),
        );
        let view = Cmd::bash(&script).umview_opts(["-p", "umfuse"]).run(mode);
        view.assert_ok();
        assert_eq!(view.out(), native, "{}: {}", mode.name(), view.dump());
    }
}

#[test]
fn the_cache_never_shows_stale_bytes_on_fuse2fs() {
    let t = TempDir::new("fuse-cache-fuse2fs");
    let native = native_output(&t);
    let img = t.join("disk.img");
    let out = run_native(&[
        "/usr/sbin/mkfs.ext4",
        "-q",
        "-F",
        &img.to_string_lossy(),
        "64M",
    ]);
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
    t.mkdir("mnt");
    let script = format!(
        "{TREE_SH}cd {d}\n\
         fuse2fs -f disk.img mnt -o fakeroot >fuse2fs.out 2>fuse2fs.err & pid=$!\n\
         wait_for mnt/lost+found || {{ cat fuse2fs.err; exit 1; }}\n\
         mkdir mnt/w && {py} || exit 1\n\
         {vu} mnt; wait $pid\n",
        d = q(t.path()),
        py = python_script("mnt/w"),
        vu = q(&view_command("viewumount")),
    );
    let view = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    view.assert_ok();
    assert_eq!(view.out(), native, "{}", view.dump());
}

/// The umfusereal server's files changed behind its back (in its source
/// directory, not through the mount): an open of the mount's file sees
/// the new bytes (umfusereal's opens do not keep the cache), and so does
/// an fd opened before, once the attribute timeout (1 s) ran out and the
/// new modification time is seen, as kernel FUSE with `auto_inval_data`.
#[test]
fn changes_behind_the_server_are_seen_as_kernel_fuse_sees_them() {
    let t = TempDir::new("fuse-cache-behind");
    let (src, mnt) = (t.mkdir("src"), t.mkdir("mnt"));
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    t.write("src/f", &data);
    const PY: &str = r#"
import os, sys, time
src, mnt = sys.argv[1], sys.argv[2]
r = os.open(mnt + "/f", os.O_RDONLY)
def whole(fd):
    out = b""
    while True:
        b = os.pread(fd, 1 << 20, len(out))
        if not b: return out
        out += b
first = whole(r)
print("first", len(first), first[:3], flush=True)
time.sleep(0.05)
with open(src + "/f", "r+b") as f:
    f.seek(2 << 20); f.write(b"BEHIND")
with open(mnt + "/f", "rb") as f:
    b = f.read()
    print("reopened", b[2 << 20:(2 << 20) + 6], len(b), flush=True)
time.sleep(1.2)
print("old fd after timeout", whole(r)[2 << 20:(2 << 20) + 6], flush=True)
with open(src + "/f", "ab") as f:
    f.write(b"grown")
time.sleep(1.2)
b = whole(r)
print("grown", len(b), b[-5:], flush=True)
"#;
    let script = format!(
        "{vm} -t umfusereal {s} {m} || exit 1\n{py} -c {code} {s} {m}",
        vm = q(&view_command("viewmount")),
        s = q(&src),
        m = q(&mnt),
        py = q(&python3()),
        code = shell_quote(PY),
    );
    let view = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    view.assert_ok();
    let n = 3 << 20;
    assert_eq!(
        view.out(),
        format!(
            "first {n} b'\\x00\\x01\\x02'\nreopened b'BEHIND' {n}\n\
             old fd after timeout b'BEHIND'\ngrown {} b'grown'\n",
            n + 5
        ),
        "{}",
        view.dump()
    );
}
