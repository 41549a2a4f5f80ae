//! Network stacks mounted as files (`-p umnet`): `umnetnative` as the
//! view's default gives curl the kernel's network (byte-exact downloads
//! from a web server outside the view, through kernel sockets handed to
//! the program), `umnetnull` takes networking away (curl fails, Python's
//! socket() gets `EAFNOSUPPORT`, `AF_UNIX` still works), `mstack` switches
//! the stack of one command tree, msocket (the control call, from Python
//! through ctypes) picks a stack per socket, `-o perm` mounts cannot be
//! undone, bad msocket arguments get clear errnos, and programs outside the
//! view keep their network. `umnetsmoltcp` (alias `umnetlwip`) is a stack of
//! the view's own: a web server and curl, and a UDP echo over IPv6, talk on
//! its loopback, which the kernel's stack does not see; `ip` changes its
//! addresses, routes and links as it would the kernel's (compared with a
//! fresh kernel network namespace), and the interface ioctls and
//! `ifconfig` see the same.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use viewos_tests::{python3, require_tool, view_command, wait_until, Cmd, Mode, TempDir};

/// A web server (`http.server`) on 127.0.0.1 outside any view, serving a
/// directory; stopped on drop.
struct Server {
    child: Child,
    port: u16,
}

const SERVER_PY: &str = r#"
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.log_message = lambda *a: None
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
"#;

impl Server {
    fn start(t: &TempDir, www: &Path) -> Server {
        let script = t.write("server.py", SERVER_PY);
        let port_file = t.join("port");
        let child = Command::new(python3())
            .arg(&script)
            .arg(www)
            .arg(&port_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the web server");
        let mut s = Server { child, port: 0 };
        wait_until(Duration::from_secs(20), "the web server's port", || {
            port_file.is_file()
        });
        s.port = std::fs::read_to_string(&port_file)
            .expect("port file")
            .trim()
            .parse()
            .expect("a port number");
        s
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes that compress badly, so the download is the file itself.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A temporary directory with a web server outside the view serving
/// `www/data.bin` (`len` bytes); the md5 line of the file as md5sum
/// prints it for stdin.
fn served_file(tag: &str, len: usize) -> (TempDir, Server, String) {
    let t = TempDir::new(tag);
    let data = pseudo_random(len);
    t.write("www/data.bin", &data);
    let md5 = Command::new("md5sum")
        .arg(t.join("www/data.bin"))
        .output()
        .expect("md5sum");
    let sum = String::from_utf8_lossy(&md5.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let server = Server::start(&t, &t.join("www"));
    (t, server, format!("{sum}  -\n"))
}

/// A bash script's command with the tools it uses in its environment.
fn script(body: &str, server: &Server) -> Cmd {
    Cmd::bash(body)
        .env("VIEWMOUNT", view_command("viewmount"))
        .env("VIEWUMOUNT", view_command("viewumount"))
        .env("MSTACK", view_command("mstack"))
        .env("CURL", require_tool("curl", "curl"))
        .env("PY", python3())
        .env("URL", server.url("data.bin"))
}

/// What a stack's kernel socket is in the program: its own kernel socket,
/// except under `--no-seccomp`, where the host serves it (a placeholder
/// pipe) as it cannot hand sockets over at ptrace stops.
fn kernel_kind(mode: Mode) -> &'static str {
    if mode == Mode::ViewNoSeccomp {
        "pipe"
    } else {
        "socket"
    }
}

/// Prints the kind of file socket(2) of `family` gives (`socket` for a
/// kernel socket) or the errno's name.
const PY_SOCKET_KIND: &str = r#"
import errno, os, socket, sys
for fam in sys.argv[1:]:
    try:
        s = socket.socket(getattr(socket, fam), socket.SOCK_STREAM)
        print(fam, os.readlink("/proc/self/fd/%d" % s.fileno()).split(":")[0])
        s.close()
    except OSError as e:
        print(fam, errno.errorcode[e.errno])
"#;

#[test]
fn curl_through_the_native_stack_is_byte_exact() {
    let (_t, server, sum) = served_file("umnet-native", 3 << 20);
    let body = r#"
set -e
"$VIEWMOUNT" -t umnetnative none /dev/net/default
stat -c '%F %a' /dev/net/default
ls /dev/net | grep -x default
"$CURL" -sS "$URL" | md5sum
"$PY" -c "$KIND" AF_INET AF_UNIX
"#;
    for mode in Mode::VIEWS {
        let r = script(body, &server)
            .env("KIND", PY_SOCKET_KIND)
            .umview_opts(["-p", "umnet"])
            .run(mode);
        r.assert_ok();
        assert_eq!(
            r.out(),
            format!(
                "character special file 666\ndefault\n{sum}AF_INET {}\nAF_UNIX socket\n",
                kernel_kind(mode)
            ),
            "{}",
            r.dump()
        );
    }
    // The same stack mounted at start with -p.
    let r = script(r#""$CURL" -sS "$URL" | md5sum"#, &server)
        .umview_opts([
            "-p",
            "umnet,type=umnetnative,source=none,target=/dev/net/default",
        ])
        .run(Mode::View);
    r.assert_ok();
    assert_eq!(r.out(), sum, "{}", r.dump());
}

#[test]
fn the_null_stack_takes_networking_away_and_unix_sockets_stay() {
    let (t, server, sum) = served_file("umnet-null", 64 << 10);
    let body = r#"
"$CURL" -sS "$URL" | md5sum
"$VIEWMOUNT" -t umnetnull none /dev/net/default || exit 9
"$CURL" -sS -o /dev/null "$URL"
echo "curl exit $?"
"$PY" -c "$KIND" AF_INET AF_INET6 AF_NETLINK AF_UNIX
"$PY" -c 'import socket; a, b = socket.socketpair(); a.send(b"unix ok"); print(b.recv(10).decode())'
# Unmounted: the view is transparent again.
"$VIEWUMOUNT" /dev/net/default || exit 9
"$CURL" -sS "$URL" | md5sum
"#;
    for mode in Mode::VIEWS {
        let r = script(body, &server)
            .env("KIND", PY_SOCKET_KIND)
            .umview_opts(["-p", "umnet"])
            .run(mode);
        r.assert_ok();
        assert_eq!(
            r.out(),
            format!(
                "{sum}curl exit 7\nAF_INET EAFNOSUPPORT\nAF_INET6 EAFNOSUPPORT\n\
                 AF_NETLINK EAFNOSUPPORT\nAF_UNIX socket\nunix ok\n{sum}"
            ),
            "{}",
            r.dump()
        );
        assert!(r.err().contains("Couldn't connect"), "{}", r.dump());
    }
    // A program outside the view, while the view has no network, has its
    // own.
    let ready = t.join("ready");
    let hold = script(
        r#""$VIEWMOUNT" -t umnetnull none /dev/net/default && "$PY" -c "$KIND" AF_INET > "$READY"; sleep 3"#,
        &server,
    )
    .env("KIND", PY_SOCKET_KIND)
    .env("READY", &ready)
    .umview_opts(["-p", "umnet"]);
    let view = std::thread::spawn(move || hold.run(Mode::View));
    wait_until(Duration::from_secs(20), "the view without network", || {
        std::fs::read_to_string(&ready).is_ok_and(|s| s.contains("EAFNOSUPPORT"))
    });
    let outside = Command::new(require_tool("curl", "curl"))
        .args(["-sS", &server.url("data.bin")])
        .output()
        .expect("curl outside the view");
    assert!(outside.status.success(), "{outside:?}");
    assert_eq!(outside.stdout, pseudo_random(64 << 10));
    view.join().expect("the view's thread").assert_ok();
}

#[test]
fn mstack_switches_the_stack_of_one_command_tree() {
    let (_t, server, sum) = served_file("umnet-mstack", 256 << 10);
    let body = r#"
"$VIEWMOUNT" -t umnetnative none /dev/net/default || exit 9
"$VIEWMOUNT" -t umnetnull none /dev/net/null || exit 9
"$MSTACK" /dev/net/null "$CURL" -sS -o /dev/null "$URL"
echo "mstack null: $?"
# Children of the command inherit its stack.
"$MSTACK" /dev/net/null bash -c '"$CURL" -sS -o /dev/null "$URL"; echo "child: $?"'
"$MSTACK" /dev/net/null "$PY" -c "$KIND" AF_INET AF_INET6 AF_UNIX
# Only the families named.
"$MSTACK" -f inet6 /dev/net/null "$PY" -c "$KIND" AF_INET AF_INET6
"$MSTACK" -f inet6 /dev/net/null "$CURL" -sS "$URL" | md5sum
# Back to the default stack, inside the null one.
"$MSTACK" /dev/net/null "$MSTACK" /dev/net/default "$CURL" -sS "$URL" | md5sum
# The shell itself was never switched.
"$CURL" -sS "$URL" | md5sum
"$MSTACK" /etc/passwd true; echo "not a stack: $?"
"$MSTACK" /dev/net/nothing true; echo "missing: $?"
"$MSTACK" -f bogus /dev/net/null true; echo "bad families: $?"
"#;
    for mode in Mode::VIEWS {
        let r = script(body, &server)
            .env("KIND", PY_SOCKET_KIND)
            .umview_opts(["-p", "umnet"])
            .run(mode);
        r.assert_ok();
        assert_eq!(
            r.out(),
            format!(
                "mstack null: 7\nchild: 7\nAF_INET EAFNOSUPPORT\nAF_INET6 EAFNOSUPPORT\n\
                 AF_UNIX socket\nAF_INET {}\nAF_INET6 EAFNOSUPPORT\n{sum}{sum}{sum}\
                 not a stack: 1\nmissing: 1\nbad families: 1\n",
                kernel_kind(mode)
            ),
            "{}",
            r.dump()
        );
        let err = r.err();
        assert!(err.contains("/etc/passwd: not a network stack"), "{err}");
        assert!(err.contains("/dev/net/nothing: no such file"), "{err}");
    }
    // Outside a view mstack says so.
    let out = Command::new(view_command("mstack"))
        .args(["/dev/net/null", "true"])
        .output()
        .expect("mstack outside");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a view"));
}

/// msocket through the control call (`syscall(0x71e05, 7, arg, len)`,
/// arg = domain, type, protocol as int32 then the stack's path), from
/// Python with ctypes.
const PY_MSOCKET: &str = r#"
import ctypes, errno, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def msocket(path, domain=socket.AF_INET, kind=socket.SOCK_STREAM, proto=0, raw=None):
    arg = raw if raw is not None else struct.pack("iii", domain, kind, proto) + path
    buf = ctypes.create_string_buffer(arg, len(arg))
    r = libc.syscall(ctypes.c_long(0x71e05), ctypes.c_long(7), buf,
                     ctypes.c_long(len(arg)), ctypes.c_long(0), ctypes.c_long(0))
    if r < 0:
        return errno.errorcode[ctypes.get_errno()]
    return r

port = int(sys.argv[1])
fd = msocket(b"/dev/net/native")
s = socket.socket(fileno=fd)
print("native", os.readlink("/proc/self/fd/%d" % fd).split(":")[0], s.family.name, s.type.name)
s.connect(("127.0.0.1", port))
s.sendall(b"GET /data.bin HTTP/1.0\r\n\r\n")
reply = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    reply += chunk
print(reply.split(b"\r\n")[0].decode(), len(reply.split(b"\r\n\r\n", 1)[1]))
s.close()
fd = msocket(b"/dev/net/native", kind=socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
import fcntl
print("flags", bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK), bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
os.close(fd)
# Relative to the cwd.
os.chdir("/dev/net")
fd = msocket(b"native")
print("relative", fd >= 0)
os.close(fd)
print("default", msocket(b""))
print("default unix", msocket(b"", domain=socket.AF_UNIX) >= 0)
print("null", msocket(b"/dev/net/default"))
print("missing", msocket(b"/dev/net/nothing"))
print("not a stack", msocket(b"/etc/passwd"))
print("bad domain", msocket(b"/dev/net/native", domain=4242))
print("bad type", msocket(b"/dev/net/native", kind=0x7777))
print("short", msocket(b"", raw=b"\x02\x00"))
print("nul", msocket(b"/dev/net/native\x00x"))
"#;

#[test]
fn msocket_picks_a_stack_per_socket() {
    let (t, server, _) = served_file("umnet-msocket", 100_000);
    let py = t.write("msocket.py", PY_MSOCKET);
    let body = r#"
"$VIEWMOUNT" -t umnetnull none /dev/net/default || exit 9
"$VIEWMOUNT" -t umnetnative none /dev/net/native || exit 9
"$PY" "$SCRIPT" "$PORT"
"#;
    let expected = "AF_INET SOCK_STREAM\nHTTP/1.0 200 OK 100000\n\
                    flags True True\nrelative True\ndefault EAFNOSUPPORT\n\
                    default unix True\nnull EAFNOSUPPORT\nmissing ENOENT\n\
                    not a stack EINVAL\nbad domain EAFNOSUPPORT\nbad type EINVAL\n\
                    short EINVAL\nnul EINVAL\n";
    for mode in Mode::VIEWS {
        let r = script(body, &server)
            .env("SCRIPT", &py)
            .env("PORT", server.port.to_string())
            .umview_opts(["-p", "umnet"])
            .run(mode);
        r.assert_ok();
        let expected = format!("native {} {expected}", kernel_kind(mode));
        assert_eq!(r.out(), expected, "{}", r.dump());
    }
    // Outside a view the call does not exist.
    let mut out = String::new();
    Command::new(python3())
        .args(["-c", PY_MSOCKET_OUTSIDE])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3")
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(out, "ENOSYS\n");
}

const PY_MSOCKET_OUTSIDE: &str = r#"
import ctypes, errno, struct
libc = ctypes.CDLL(None, use_errno=True)
arg = struct.pack("iii", 2, 1, 0)
r = libc.syscall(ctypes.c_long(0x71e05), ctypes.c_long(7), arg, ctypes.c_long(len(arg)), ctypes.c_long(0), ctypes.c_long(0))
print(errno.errorcode[ctypes.get_errno()] if r < 0 else r)
"#;

#[test]
fn a_perm_mount_cannot_be_undone() {
    let (_t, server, _) = served_file("umnet-perm", 1000);
    let body = r#"
"$VIEWMOUNT" -t umnetnull -o perm none /dev/net/default || exit 9
"$VIEWUMOUNT" /dev/net/default; echo "umount: $?"
"$PY" -c "$KIND" AF_INET
"$VIEWMOUNT" -t umnetnative none /dev/net/x || exit 9
"$VIEWUMOUNT" /dev/net/x; echo "plain umount: $?"
"$VIEWMOUNT" -t umnetnull -o nosuch none /dev/net/y; echo "bad option: $?"
"$VIEWMOUNT" -t umnetbogus none /dev/net/y; echo "bad type: $?"
"$PY" -c 'import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
r = libc.umount2(b"/dev/net/default", 0)
print("umount2", errno.errorcode[ctypes.get_errno()] if r else r)'
"#;
    for mode in Mode::VIEWS {
        let r = script(body, &server)
            .env("KIND", PY_SOCKET_KIND)
            .umview_opts(["-p", "umnet"])
            .run(mode);
        r.assert_ok();
        assert_eq!(
            r.out(),
            "umount: 32\nAF_INET EAFNOSUPPORT\nplain umount: 0\nbad option: 32\n\
             bad type: 32\numount2 EBUSY\n",
            "{}",
            r.dump()
        );
        assert!(r.err().contains("busy"), "{}", r.dump());
    }
}

/// A web server and a UDP echo in the view, on the view's smoltcp stack.
const PY_SMOL_SERVER: &str = r#"
import functools, http.server, os, socket, sys, threading
www, port_file = sys.argv[1], sys.argv[2]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=www)
http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("::1", 0))
def echo():
    data, peer = udp.recvfrom(100)
    udp.sendto(data.upper(), peer)
threading.Thread(target=echo, daemon=True).start()
with open(port_file + ".tmp", "w") as f:
    f.write("%d %d" % (srv.server_address[1], udp.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
srv.handle_request(); srv.handle_request(); srv.handle_request()
"#;

const PY_UDP_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"ping over smoltcp", ("::1", int(sys.argv[1])))
data, peer = s.recvfrom(100)
print(data.decode(), peer[0])
"#;

#[test]
fn smoltcp_stack_carries_curl_and_python_in_one_view() {
    let t = TempDir::new("umnet-smoltcp");
    let data = pseudo_random(4 << 20);
    t.write("www/data.bin", &data);
    let sum = Command::new("md5sum")
        .arg(t.join("www/data.bin"))
        .output()
        .expect("md5sum");
    let sum = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    t.write("server.py", PY_SMOL_SERVER);
    t.write("udp.py", PY_UDP_CLIENT);
    let body = r#"
"$VIEWMOUNT" -t "$TYPE" none /dev/net/default || exit 9
"$VIEWMOUNT" -t umnetnative none /dev/net/native || exit 9
rm -f "$DIR/port"
"$PY" "$DIR/server.py" "$DIR/www" "$DIR/port" &
for i in $(seq 200); do [ -s "$DIR/port" ] && break; sleep 0.05; done
read -r PORT UDP < "$DIR/port"
"$CURL" -sS "http://127.0.0.1:$PORT/data.bin" | md5sum
"$CURL" -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$PORT/missing"
"$PY" "$DIR/udp.py" "$UDP"
# The kernel's stack does not know the view's server.
"$MSTACK" /dev/net/native "$CURL" -sS -o /dev/null "http://127.0.0.1:$PORT/data.bin"
echo "kernel stack: $?"
"$CURL" -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$PORT/data.bin"
wait
# Nothing but the loopback.
"$CURL" -sS -o /dev/null --connect-timeout 5 http://192.0.2.1/; echo "unreachable: $?"
"#;
    for (mode, fstype) in [
        (Mode::View, "umnetsmoltcp"),
        (Mode::ViewNoSeccomp, "umnetlwip"),
    ] {
        let r = Cmd::bash(body)
            .env("VIEWMOUNT", view_command("viewmount"))
            .env("MSTACK", view_command("mstack"))
            .env("CURL", require_tool("curl", "curl"))
            .env("PY", python3())
            .env("DIR", t.path())
            .env("TYPE", fstype)
            .umview_opts(["-p", "umnet"])
            .run(mode);
        r.assert_ok();
        assert_eq!(
            r.out(),
            format!("{sum}  -\n404\nPING OVER SMOLTCP ::1\nkernel stack: 7\n200\nunreachable: 7\n"),
            "{}",
            r.dump()
        );
    }
}

const PY_SOCKETS: &str = include_str!("../fixtures/py_sockets.py");

#[test]
fn socket_calls_on_the_smoltcp_stack_match_the_kernel() {
    // The network program of the socket tests (TCP large and small,
    // shutdown, peeking, vectored calls, refused and non-blocking
    // connects, UDP truncation, IPv6, poll/select/epoll, signals, SIGPIPE,
    // fork and dup, garbage arguments) gives the kernel's answers on the
    // view's own stack.
    let t = TempDir::new("umnet-smol-py");
    let script = t.write("py_sockets.py", PY_SOCKETS).display().to_string();
    let py = python3().display().to_string();
    let native = Cmd::new([py.clone(), script.clone(), "--links".into()]).run(Mode::Native);
    native.assert_ok();
    let expected = native.out().replace("served socket", "served pipe");
    for mode in Mode::VIEWS {
        let view = Cmd::new([py.clone(), script.clone(), "--links".into()])
            .umview_opts([
                "-p",
                "umnet,type=umnetsmoltcp,source=none,target=/dev/net/default",
            ])
            .run(mode);
        view.assert_ok();
        assert_eq!(view.out(), expected, "{}", view.dump());
    }
}

#[test]
fn iperf3_runs_over_the_smoltcp_stack() {
    let iperf3 = require_tool("iperf3", "iperf3");
    // Server and client in one view, on its own stack; the kernel's
    // loopback never sees the port (the client through it is refused).
    let body = r#"
"$VIEWMOUNT" -t umnetsmoltcp none /dev/net/default || exit 9
"$VIEWMOUNT" -t umnetnative none /dev/net/native || exit 9
"$IPERF3" -s -1 -B 127.0.0.1 -p 35201 > /dev/null 2>&1 &
"$MSTACK" /dev/net/native "$IPERF3" -c 127.0.0.1 -p 35201 -t 1 > /dev/null 2>&1; echo "kernel stack: $?"
# A refused attempt does not use up the one-off server.
for i in $(seq 100); do
    "$IPERF3" -c 127.0.0.1 -p 35201 -t 1 -J > "$OUT" 2>/dev/null && break
    sleep 0.1
done
echo "client: $?"
wait; echo "server: $?"
"$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["end"]
sent, received = r["sum_sent"]["bytes"], r["sum_received"]["bytes"]
print("bytes", 0 < received <= sent, file=sys.stdout)
print("sent", sent, "received", received, file=sys.stderr)
' "$OUT"
"#;
    let t = TempDir::new("umnet-iperf3");
    let r = Cmd::bash(body)
        .env("VIEWMOUNT", view_command("viewmount"))
        .env("MSTACK", view_command("mstack"))
        .env("IPERF3", &iperf3)
        .env("PY", python3())
        .env("OUT", t.join("iperf3.json"))
        .umview_opts(["-p", "umnet"])
        .run(Mode::View);
    r.assert_ok();
    assert_eq!(
        r.out(),
        "kernel stack: 1\nclient: 0\nserver: 0\nbytes True\n",
        "{}",
        r.dump()
    );
}

/// `ip` changing a stack that has only its loopback: the same script
/// runs in a fresh network namespace of the kernel (when this machine
/// lets the user make one) and in a view on its smoltcp stack.
const IP_ON_LO: &str = r#"
ip link set lo up
ip addr add 10.0.0.1/24 dev lo; echo "add: $?"
ip addr add 10.0.0.1/24 dev lo; echo "again: $?"
ip addr add 10.0.0.1/24 dev nosuch; echo "no device: $?"
ip -6 addr add 2001:db8::1/64 dev lo; echo "add6: $?"
ip -6 addr add 2001:db8::1/64 dev lo; echo "again6: $?"
ip addr show dev lo
ip -6 route
ip route get 10.0.0.7
ip route get 127.0.0.1
ip route get 192.0.2.1; echo "unreachable: $?"
ip route add 10.5.0.1/16 via 10.0.0.254; echo "host bits: $?"
ip route add 10.7.0.0/16; echo "no device: $?"
ip route del 10.9.0.0/16; echo "del missing: $?"
ip addr del 10.0.0.2/24 dev lo; echo "del missing: $?"
ip -6 addr del 2001:db8::2/64 dev lo; echo "del missing6: $?"
ip addr del 10.0.0.1/24 dev lo; echo "del: $?"
ip -6 addr del 2001:db8::1/64 dev lo; echo "del6: $?"
ip -o addr show | awk '{print $2, $3, $4}'
ip link set lo down; echo "down: $?"
ip link show lo
ip link set nosuch up; echo "no device: $?"
"#;

/// `ip route get`'s output with its `uid N` masked.
fn mask_uid(s: &str) -> String {
    s.lines()
        .map(|l| match l.find(" uid ") {
            Some(at) => format!("{} uid N", &l[..at]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn ip_configures_the_smoltcp_stack_as_the_kernel_would() {
    let native = Cmd::new(["unshare", "-rn", "bash", "-c", IP_ON_LO]).run(Mode::Native);
    let expected = if native.status == viewos_tests::Status::Code(0) && !native.out().is_empty() {
        Some(native)
    } else {
        viewos_tests::report_skipped(
            "ip on a fresh kernel namespace",
            "unshare -rn failed here; the view is checked against fixed output",
        );
        None
    };
    let body =
        format!("\"$VIEWMOUNT\" -t umnetsmoltcp none /dev/net/default || exit 9\n{IP_ON_LO}");
    for mode in Mode::VIEWS {
        let view = Cmd::bash(&body)
            .env("VIEWMOUNT", view_command("viewmount"))
            .umview_opts(["-p", "umnet"])
            .run(mode);
        view.assert_ok();
        if let Some(native) = &expected {
            // `unshare -r` maps the user to root.
            assert_eq!(
                mask_uid(&view.out()),
                // An IPv6 address of the kernel's is tentative until its
                // duplicate address detection ends.
                mask_uid(&native.out().replace(" tentative ", " ")),
                "{}",
                view.dump()
            );
            assert_eq!(view.err(), native.err(), "{}", view.dump());
        }
        let out = view.out();
        for line in [
            "add: 0\nagain: 2\nno device: 1\nadd6: 0\nagain6: 2\n",
            "    inet 10.0.0.1/24 scope global lo\n",
            "2001:db8::/64 dev lo proto kernel metric 256 pref medium\n",
            "local 10.0.0.7 dev lo src 10.0.0.1 uid ",
            "unreachable: 2\nhost bits: 2\nno device: 2\ndel missing: 2\ndel missing: 2\n\
             del missing6: 2\ndel: 0\ndel6: 0\nlo inet 127.0.0.1/8\nlo inet6 ::1/128\ndown: 0\n",
            "1: lo: <LOOPBACK> mtu 65536 qdisc noqueue state DOWN mode DEFAULT",
        ] {
            assert!(out.contains(line), "missing {line:?}\n{}", view.dump());
        }
        let err = view.err();
        for line in [
            "Error: ipv4: Address already assigned.\n",
            "Error: ipv6: address already assigned.\n",
            "Cannot find device \"nosuch\"\n",
            "RTNETLINK answers: Network is unreachable\n",
            "Error: Invalid prefix for given prefix length.\n",
            "RTNETLINK answers: No such device\n",
            "RTNETLINK answers: No such process\n",
            "Error: ipv4: Address not found.\n",
            "Error: ipv6: address not found.\n",
        ] {
            assert!(err.contains(line), "missing {line:?}\n{}", view.dump());
        }
    }
}

/// The classic interface ioctls on a socket of the view's stack, from
/// Python, and `ifconfig` (net-tools) asking about one interface.
const PY_IFREQ: &str = r#"
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ifreq(req, name, data=b""):
    return fcntl.ioctl(s, req, struct.pack("16s24s", name.encode(), data))
print("addr", socket.inet_ntoa(ifreq(0x8915, "lo")[20:24]))
print("mask", socket.inet_ntoa(ifreq(0x891b, "lo")[20:24]))
print("flags", hex(struct.unpack("H", ifreq(0x8913, "lo")[16:18])[0]))
print("mtu", struct.unpack("i", ifreq(0x8921, "lo")[16:20])[0])
print("index", struct.unpack("i", ifreq(0x8933, "lo")[16:20])[0])
print("name", fcntl.ioctl(s, 0x8910, struct.pack("16si20x", b"", 1))[:16].rstrip(b"\0").decode())
print("nametoindex", socket.if_nametoindex("lo"))
try:
    ifreq(0x8915, "eth7")
except OSError as e:
    print("missing", e.strerror)
try:
    fcntl.ioctl(s, 0x89aa, b"\0" * 40)
except OSError as e:
    print("unknown", e.strerror)
buf = bytearray(40 * 8)
import array, ctypes
b = ctypes.create_string_buffer(40 * 8)
conf = struct.pack("iiQ", 40 * 8, 0, ctypes.addressof(b))
n = struct.unpack("iiQ", fcntl.ioctl(s, 0x8912, conf))[0]
for i in range(0, n, 40):
    print("conf", b.raw[i:i+16].rstrip(b"\0").decode(), socket.inet_ntoa(b.raw[i+20:i+24]))
"#;

#[test]
fn interface_ioctls_and_ifconfig_see_the_smoltcp_stack() {
    // In /usr/sbin, which a user's PATH may not have.
    let ifconfig = ["/usr/sbin/ifconfig", "/sbin/ifconfig"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("this test needs ifconfig: install net-tools (scripts/install-deps.sh does)");
    let body = r#"
"$VIEWMOUNT" -t umnetsmoltcp none /dev/net/default || exit 9
ip addr add 10.1.2.3/16 dev lo || exit 9
ip link set lo mtu 1400 || exit 9
"$PY" -c "$SCRIPT"
"$IFCONFIG" lo | head -2
"#;
    for mode in Mode::VIEWS {
        let r = Cmd::bash(body)
            .env("VIEWMOUNT", view_command("viewmount"))
            .env("PY", python3())
            .env("SCRIPT", PY_IFREQ)
            .env("IFCONFIG", ifconfig)
            .umview_opts(["-p", "umnet"])
            .run(mode);
        r.assert_ok();
        assert_eq!(
            r.out(),
            "addr 127.0.0.1\nmask 255.0.0.0\nflags 0x49\nmtu 1400\nindex 1\nname lo\n\
             nametoindex 1\nmissing No such device\nunknown Inappropriate ioctl for device\n\
             conf lo 127.0.0.1\nconf lo 10.1.2.3\n\
             lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 1400\n        inet 127.0.0.1  netmask 255.0.0.0\n",
            "{}",
            r.dump()
        );
    }
}

/// A `vde_switch` of the test's, in the foreground with its console on a
/// pipe of ours: it ends when dropped (or when the pipe closes, if the
/// test dies).
struct Switch {
    child: Child,
    dir: std::path::PathBuf,
}

impl Switch {
    fn start(t: &TempDir) -> Switch {
        let bin = require_tool("vde_switch", "vde2");
        let dir = t.join("sw");
        let child = Command::new(bin)
            .arg("-s")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vde_switch");
        let sw = Switch { child, dir };
        wait_until(Duration::from_secs(10), "vde_switch's socket", || {
            sw.dir.join("ctl").exists()
        });
        sw
    }

    fn url(&self) -> String {
        format!("vde://{}", self.dir.display())
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// View A of two on one switch: `ip` gives its link an address, then a
/// web server and a UDP echo run until view B is done.
const VIEW_A: &str = r#"
"$VIEWMOUNT" -t umnetsmoltcp -o "vd0=$SW" none /dev/net/default || exit 9
ip link set vd0 up && ip addr add 10.0.0.1/24 dev vd0 || exit 9
ip -6 addr add fd00::1/64 dev vd0 || exit 9
"$PY" "$DIR/peer_a.py" "$DIR/www" "$DIR/ready" "$DIR/done"
"#;

const PEER_A_PY: &str = r#"
import functools, http.server, os, socket, sys, threading, time
www, ready, done = sys.argv[1:]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=www)
http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
for fam, addr in ((socket.AF_INET, "10.0.0.1"), (socket.AF_INET6, "fd00::1")):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((addr, 7007))
    def echo(u=u):
        while True:
            data, peer = u.recvfrom(2000)
            u.sendto(data.upper() + b" from " + peer[0].encode(), peer)
    threading.Thread(target=echo, daemon=True).start()
open(ready, "w").close()
for _ in range(2800):
    if os.path.exists(done):
        break
    time.sleep(0.05)
"#;

/// View B: its own address, then curl and UDP to view A over the switch.
const VIEW_B: &str = r#"
"$VIEWMOUNT" -t umnetsmoltcp -o "vd0=$SW" none /dev/net/default || exit 9
ip link set dev vd0 up; echo "up: $?"
ip addr add 10.0.0.2/24 dev vd0; echo "addr: $?"
ip -6 addr add fd00::2/64 dev vd0 || exit 9
ip -o -4 addr show | awk '{print $2, $4}'
ip -o link show vd0 | awk '{print $2, $3, $4, $5}'
ip route
ip route add default via 10.0.0.254; echo "default: $?"
ip route | head -1
ip route get 192.0.2.9 | head -1
ip route del default; echo "del default: $?"
hostname -I
for i in $(seq 400); do [ -e "$DIR/ready" ] && break; sleep 0.05; done
"$CURL" -sS "http://10.0.0.1:8080/data.bin" | md5sum
"$CURL" -sS -o /dev/null -w '%{http_code}\n' "http://10.0.0.1:8080/missing"
"$PY" -c '
import socket
for fam, addr in ((socket.AF_INET, "10.0.0.1"), (socket.AF_INET6, "fd00::1")):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.sendto(b"hello over vde", (addr, 7007))
    print(s.recvfrom(100)[0].decode())
'
# Nobody has 10.0.0.3: no ARP answer, connect gives up.
"$CURL" -sS -o /dev/null --connect-timeout 3 http://10.0.0.3:8080/; echo "nobody: $?"
"$CURL" -sS -o /dev/null --connect-timeout 3 http://192.0.2.1/; echo "no route: $?"
touch "$DIR/done"
"#;

#[test]
fn two_views_talk_over_a_vde_switch() {
    let t = TempDir::new("umnet-vde");
    let sw = Switch::start(&t);
    let data = pseudo_random(8 << 20);
    t.write("www/data.bin", &data);
    t.write("peer_a.py", PEER_A_PY);
    let sum = Command::new("md5sum")
        .arg(t.join("www/data.bin"))
        .output()
        .expect("md5sum");
    let sum = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    // 8 MiB through a user-level switch between two traced views: slow
    // on a loaded machine (a lost frame costs a retransmission timeout).
    let view = |body: &str| {
        Cmd::bash(body)
            .env("VIEWMOUNT", view_command("viewmount"))
            .env("CURL", require_tool("curl", "curl"))
            .env("PY", python3())
            .env("DIR", t.path())
            .env("SW", sw.url())
            .umview_opts(["-p", "umnet"])
            .timeout(Duration::from_secs(150))
    };
    for (mode_a, mode_b) in [
        (Mode::View, Mode::ViewNoSeccomp),
        (Mode::ViewNoSeccomp, Mode::View),
    ] {
        // A transfer between the views stalls now and then (an open bug,
        // docs/next-steps.md): a stalled run is made again once, and says
        // so on stderr.
        let mut attempt = 0;
        let (a, b) = loop {
            attempt += 1;
            let _ = std::fs::remove_file(t.join("ready"));
            let _ = std::fs::remove_file(t.join("done"));
            let a = view(VIEW_A);
            let a = std::thread::spawn(move || a.run(mode_a));
            let b =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| view(VIEW_B).run(mode_b)));
            std::fs::write(t.join("done"), "").expect("done file");
            let a = a.join();
            match (a, b) {
                (Ok(a), Ok(b)) => break (a, b),
                (a, b) if attempt < 2 => {
                    let _ = (a, b);
                    eprintln!("NOTE (two views over a vde_switch): a run stalled; made again");
                }
                (a, b) => {
                    let a = a.expect("view A");
                    let b = b.unwrap_or_else(|e| std::panic::resume_unwind(e));
                    break (a, b);
                }
            }
        };
        a.assert_ok();
        b.assert_ok();
        let expected = format!(
            "up: 0\naddr: 0\nlo 127.0.0.1/8\nvd0 10.0.0.2/24\n\
             vd0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\n\
             10.0.0.0/24 dev vd0 proto kernel scope link src 10.0.0.2 \n\
             default: 0\ndefault via 10.0.0.254 dev vd0 \n\
             192.0.2.9 via 10.0.0.254 dev vd0 src 10.0.0.2 uid 0\n\
             del default: 0\n10.0.0.2 fd00::2 \n\
             {sum}  -\n404\nHELLO OVER VDE from 10.0.0.2\nHELLO OVER VDE from fd00::2\n\
             nobody: 28\nno route: 7\n"
        );
        assert_eq!(
            mask_uid(&b.out()),
            mask_uid(&expected),
            "{}\n{}",
            b.dump(),
            a.dump()
        );
    }
    // The host's stack never saw the views' addresses.
    let ip = Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .expect("ip");
    assert!(!String::from_utf8_lossy(&ip.stdout).contains("10.0.0.2/24"));
}

/// View B pings: its own addresses, its loopback, and view A over the
/// switch, over IPv4 and IPv6; an address nobody has gets no answer.
const VIEW_PING: &str = r#"
"$VIEWMOUNT" -t umnetsmoltcp -o "vd0=$SW" none /dev/net/default || exit 9
ip link set vd0 up && ip addr add 10.0.0.2/24 dev vd0 || exit 9
ip -6 addr add fd00::2/64 dev vd0 || exit 9
for i in $(seq 400); do [ -e "$DIR/ready" ] && break; sleep 0.05; done
for to in 127.0.0.1 10.0.0.2 10.0.0.1 ::1 fd00::1; do
    "$PING" -c 3 -i 0.2 -W 5 "$to" > "$DIR/ping.out" 2>&1
    echo "$to: $? $(grep -o '[0-9]* packets transmitted, [0-9]* received' "$DIR/ping.out")"
done
"$PING" -c 1 -W 1 10.0.0.3 > /dev/null 2>&1; echo "nobody: $?"
"$PING" -c 1 -W 1 192.0.2.1 2>&1; echo "no route: $?"
touch "$DIR/done"
"#;

/// The same with Python's ping sockets (what `ping` uses without
/// privileges), for a run as root (see below).
const PY_PING: &str = r#"
import socket, struct, sys
for fam, proto, kind, to in ((socket.AF_INET, socket.IPPROTO_ICMP, 8, "10.0.0.1"),
                             (socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, "fd00::1")):
    s = socket.socket(fam, socket.SOCK_DGRAM, proto)
    s.settimeout(5)
    got = 0
    for seq in range(3):
        s.sendto(struct.pack("!BBHHH", kind, 0, 0, 0, seq) + b"ping data", (to, 0))
        reply, peer = s.recvfrom(100)
        got += reply[8:] == b"ping data" and peer[0] == to
    print(to, got)
"#;

#[test]
fn ping_answers_in_a_view_and_across_a_vde_switch() {
    let ping = ["/usr/bin/ping", "/bin/ping"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("this test needs ping: install iputils-ping (scripts/install-deps.sh does)");
    let t = TempDir::new("umnet-ping");
    let sw = Switch::start(&t);
    t.write("www/data.bin", "x");
    t.write("peer_a.py", PEER_A_PY);
    t.write("py_ping.py", PY_PING);
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let view = |body: &str| {
        Cmd::bash(body)
            .env("VIEWMOUNT", view_command("viewmount"))
            .env("PY", python3())
            .env("PING", ping)
            .env("DIR", t.path())
            .env("SW", sw.url())
            .umview_opts(["-p", "umnet"])
    };
    for mode in Mode::VIEWS {
        let _ = std::fs::remove_file(t.join("ready"));
        let _ = std::fs::remove_file(t.join("done"));
        let a = view(VIEW_A);
        let a = std::thread::spawn(move || a.run(mode));
        let b = if root {
            // ping run by root drops every capability but CAP_NET_RAW,
            // and then the host cannot hand it its sockets (the tracee
            // opens them through /proc/HOST/fd, which needs as many
            // capabilities as the host has): Python's ping sockets
            // instead, the same ICMP echo on the stack.
            viewos_tests::report_skipped(
                "ping run as root in a view",
                "the host cannot give a process that dropped its capabilities a served fd; \
                 ICMP echo checked with Python ping sockets",
            );
            view(&VIEW_PING.replace(
                "for to in",
                "\"$PY\" \"$DIR/py_ping.py\"; touch \"$DIR/done\"; exit 0\nfor to in",
            ))
            .run(mode)
        } else {
            view(VIEW_PING).run(mode)
        };
        std::fs::write(t.join("done"), "").expect("done file");
        let a = a.join().expect("view A");
        a.assert_ok();
        b.assert_ok();
        let expected = if root {
            "10.0.0.1 3\nfd00::1 3\n".to_string()
        } else {
            format!(
                "127.0.0.1: 0 3 packets transmitted, 3 received\n\
             10.0.0.2: 0 3 packets transmitted, 3 received\n\
             10.0.0.1: 0 3 packets transmitted, 3 received\n\
             ::1: 0 3 packets transmitted, 3 received\n\
             fd00::1: 0 3 packets transmitted, 3 received\n\
             nobody: 1\n{ping}: connect: Network is unreachable\nno route: 2\n"
            )
        };
        assert_eq!(b.out(), expected, "{}\n{}", b.dump(), a.dump());
    }
}

#[test]
fn iperf3_runs_between_two_views_over_a_vde_switch() {
    let iperf3 = require_tool("iperf3", "iperf3");
    let t = TempDir::new("umnet-iperf3-vde");
    let sw = Switch::start(&t);
    let server = r#"
"$VIEWMOUNT" -t umnetsmoltcp -o "vd0=$SW" none /dev/net/default || exit 9
ip link set vd0 up && ip addr add 10.0.0.1/24 dev vd0 || exit 9
touch "$OUT.up"
timeout 100 "$IPERF3" -s -B 10.0.0.1 -p 5201 > /dev/null 2>&1 &
while [ ! -e "$OUT.done" ]; do sleep 0.2; done
kill %1; echo "server: up"
"#;
    // A run whose data connection stalls (seen about once in five runs
    // on this loaded machine, not understood yet: see the report of
    // issue 7) is made again, at most three times, and said so on
    // stderr.
    let client = r#"
"$VIEWMOUNT" -t umnetsmoltcp -o "vd0=$SW" none /dev/net/default || exit 9
ip link set vd0 up && ip addr add 10.0.0.2/24 dev vd0 || exit 9
for i in $(seq 100); do [ -e "$OUT.up" ] && break; sleep 0.1; done
ok=no
for run in 1 2 3; do
    for i in $(seq 50); do
        timeout 30 "$IPERF3" -c 10.0.0.1 -p 5201 -t 2 -J > "$OUT" 2>/dev/null && break
        sleep 0.2
    done
    if "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["end"]
sent, received = r["sum_sent"]["bytes"], r["sum_received"]["bytes"]
assert 0 < received <= sent
print("iperf3 over vde: %.1f Mbit/s" % (r["sum_received"]["bits_per_second"] / 1e6), file=sys.stderr)
' "$OUT"; then ok=yes; break; fi
    echo "iperf3 run $run between the views stalled: again" >&2
done
touch "$OUT.done"
echo "client: $ok"
"#;
    let view = |body: &str| {
        Cmd::bash(body)
            .env("VIEWMOUNT", view_command("viewmount"))
            .env("IPERF3", &iperf3)
            .env("PY", python3())
            .env("OUT", t.join("iperf3.json"))
            .env("SW", sw.url())
            .umview_opts(["-p", "umnet"])
            .timeout(Duration::from_secs(150))
    };
    let s = view(server);
    let s = std::thread::spawn(move || s.run(Mode::View));
    let c = view(client).run(Mode::View);
    let _ = std::fs::write(t.join("iperf3.json.done"), "");
    let s = s.join().expect("server view");
    c.assert_ok();
    s.assert_ok();
    assert_eq!(c.out(), "client: yes\n", "{}\n{}", c.dump(), s.dump());
    assert_eq!(s.out(), "server: up\n", "{}", s.dump());
    if c.err().contains("stalled") {
        // On the real stderr (the harness does not capture it), as
        // report_skipped's lines.
        use std::io::Write;
        let line = format!("NOTE (iperf3 between two views): {}\n", c.err().trim());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// `slirpvde` (vde2's user-mode NAT) on the switch: a view with the
/// address slirp expects reaches a web server on the host's 127.0.0.1
/// through slirp's gateway, without root.
#[test]
fn a_view_reaches_the_host_through_slirpvde() {
    let slirp = require_tool("slirpvde", "vde2");
    let (t, server, sum) = served_file("umnet-slirp", 1 << 20);
    let sw = Switch::start(&t);
    let mut nat = Command::new(slirp)
        .arg("-s")
        .arg(&sw.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("slirpvde");
    let body = r#"
"$VIEWMOUNT" -t umnetsmoltcp -o "vd0=$SW" none /dev/net/default || exit 9
ip link set vd0 up && ip addr add 10.0.2.15/24 dev vd0 || exit 9
ip route add default via 10.0.2.2 || exit 9
# Until slirp is on the switch.
for i in $(seq 50); do
    "$CURL" -sS --connect-timeout 2 "http://10.0.2.2:$PORT/data.bin" > "$OUT" 2>/dev/null && break
    sleep 0.2
done
echo "curl: $?"
md5sum < "$OUT"
"#;
    let r = script(body, &server)
        .env("SW", sw.url())
        .env("PORT", server.port.to_string())
        .env("OUT", t.join("got.bin"))
        .umview_opts(["-p", "umnet"])
        .run(Mode::View);
    let _ = nat.kill();
    let _ = nat.wait();
    r.assert_ok();
    assert_eq!(r.out(), format!("curl: 0\n{sum}"), "{}", r.dump());
}
