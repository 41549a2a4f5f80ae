//! Sockets served by a service (`-p realnet`: every AF_INET and AF_INET6
//! socket of the view is a served file whose handle is a kernel socket of
//! the host's). The same network programs run natively and in the view
//! must give the same results: TCP with small and large transfers,
//! shutdown, peeking, vectored sendmsg/recvmsg, non-blocking and refused
//! connects, UDP with truncation, IPv6, poll/epoll mixing sockets and
//! pipes, signals interrupting a blocking accept, SIGPIPE, fork and dup,
//! and garbage arguments getting the kernel's errnos.

use viewos_tests::{python3, require_tool, Cmd, Mode, TempDir};

const PY_SOCKETS: &str = include_str!("../fixtures/py_sockets.py");

#[test]
fn socket_calls_through_the_service_match_the_kernel() {
    let t = TempDir::new("sockets-py");
    let script = t.write("py_sockets.py", PY_SOCKETS).display().to_string();
    let py = python3().display().to_string();
    let native = Cmd::new([py.clone(), script.clone(), "--links".into()]).run(Mode::Native);
    native.assert_ok();
    let expected = native.out().replace("served socket", "served pipe");
    for mode in Mode::VIEWS {
        let view = Cmd::new([py.clone(), script.clone(), "--links".into()])
            .umview_opts(["-p", "realnet"])
            .run(mode);
        view.assert_ok();
        // Same results; the last line shows the socket was served (its fd
        // is a placeholder of the host's, not a kernel socket).
        assert_eq!(view.out(), expected, "{}", view.dump());
    }
}

#[test]
fn without_a_socket_service_sockets_stay_the_kernels() {
    let py = python3().display().to_string();
    let code = "import os, socket; s = socket.socket(); \
                print(os.readlink('/proc/self/fd/%d' % s.fileno()).split(':')[0])";
    for mode in Mode::VIEWS {
        let view = Cmd::new([py.as_str(), "-c", code])
            .umview_opts(["-p", "unreal"])
            .run(mode);
        view.assert_ok();
        assert_eq!(view.out(), "socket\n", "{}", view.dump());
    }
}

#[test]
fn curl_fetches_from_a_web_server_in_the_same_view() {
    let curl = require_tool("curl", "curl").display().to_string();
    let t = TempDir::new("sockets-http");
    let body: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    t.write("www/page.txt", &body);
    let www = t.join("www").display().to_string();
    // Both the server and the client use served sockets.
    let script = r#"
set -e
"$PY" -c '
import http.server, socketserver, sys, functools
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.log_message = lambda *a: None
srv = socketserver.TCPServer(("127.0.0.1", 0), handler)
open(sys.argv[2], "w").write(str(srv.server_address[1]))
srv.handle_request(); srv.handle_request()
' "$WWW" "$WWW/../port" &
for i in $(seq 100); do [ -s "$WWW/../port" ] && break; sleep 0.05; done
PORT=$(cat "$WWW/../port")
"$CURL" -sS "http://127.0.0.1:$PORT/page.txt" | md5sum
"$CURL" -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$PORT/missing"
wait
"#;
    let expected = Cmd::bash(&format!("md5sum < {}/page.txt; echo 404", www)).run(Mode::Native);
    expected.assert_ok();
    for mode in Mode::VIEWS {
        let _ = std::fs::remove_file(t.join("port"));
        let view = Cmd::bash(script)
            .env("PY", python3())
            .env("CURL", &curl)
            .env("WWW", &www)
            .umview_opts(["-p", "realnet"])
            .run(mode);
        view.assert_ok();
        assert_eq!(
            view.out().replace("  -", " -"),
            expected.out().replace("  -", " -"),
            "{}",
            view.dump()
        );
    }
}
