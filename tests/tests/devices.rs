//! Devices by number (`-p echodev`: the service claims character device
//! 1:7, the number of the real `/dev/full`, and serves a loop device whose
//! reads give back what was written). Opening the real node in the view
//! reaches the service; reads of the empty device block until another
//! process writes, as a blocking served file must; non-blocking opens get
//! `EAGAIN`; select sees the device become readable; signals interrupt a
//! blocked read with the kernel's rules.

use viewos_tests::{python3, Cmd, Mode};

#[test]
fn a_claimed_device_number_is_served_wherever_its_node_is() {
    let script = r#"
out=$(mktemp)
cat /dev/full > "$out" &
sleep 0.3
echo hello > /dev/full
echo world >> /dev/full
for i in $(seq 100); do [ "$(wc -l < "$out")" = 2 ] && break; sleep 0.05; done
kill %1; wait
cat "$out"; rm -f "$out"
stat -c '%F %t:%T' /dev/full
"#;
    for mode in Mode::VIEWS {
        let view = Cmd::bash(script).umview_opts(["-p", "echodev"]).run(mode);
        view.assert_ok();
        assert_eq!(
            view.out(),
            "hello\nworld\ncharacter special file 1:7\n",
            "{}",
            view.dump()
        );
    }
    // Without the service the node is the kernel's /dev/full.
    for mode in Mode::ALL {
        let r = Cmd::bash("echo x > /dev/full")
            .umview_opts(["-p", "unreal"])
            .run(mode);
        assert!(r.err().contains("No space left on device"), "{}", r.dump());
    }
}

const PY_DEVICE: &str = r#"
import errno, os, select, signal, time

fd = os.open("/dev/full", os.O_RDONLY | os.O_NONBLOCK)
try:
    os.read(fd, 10)
except BlockingIOError as e:
    print("nonblocking read", errno.errorcode[e.errno])
print("select idle", select.select([fd], [], [], 0.1)[0])
w = os.open("/dev/full", os.O_WRONLY)
os.write(w, b"ping")
print("select ready", select.select([fd], [], [], 5)[0] == [fd])
print("read", os.read(fd, 10))
os.close(fd)

# A blocked read, woken by a writer in another process.
r = os.open("/dev/full", os.O_RDONLY)
pid = os.fork()
if pid == 0:
    time.sleep(0.3)
    os.write(w, b"from the child")
    os._exit(0)
print("blocking read", os.read(r, 100))
os.waitpid(pid, 0)

# A signal whose handler raises ends the wait.
class Alarm(Exception):
    pass
def on_alarm(s, f):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.2)
try:
    os.read(r, 100)
except Alarm:
    print("read interrupted")
# A handler that returns: the read goes on (SA_RESTART / PEP 475).
signal.signal(signal.SIGALRM, lambda s, f: None)
signal.setitimer(signal.ITIMER_REAL, 0.2)
pid = os.fork()
if pid == 0:
    time.sleep(0.6)
    os.write(w, b"late")
    os._exit(0)
print("read after a signal", os.read(r, 100))
os.waitpid(pid, 0)
st = os.fstat(r)
print("fstat", oct(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev))
try:
    os.lseek(r, 0, 0)
except OSError as e:
    print("lseek", errno.errorcode[e.errno])
"#;

#[test]
fn served_devices_block_wake_and_poll_like_the_kernels() {
    let py = python3().display().to_string();
    let expected = "nonblocking read EAGAIN\nselect idle []\nselect ready True\n\
                    read b'ping'\nblocking read b'from the child'\nread interrupted\n\
                    read after a signal b'late'\nfstat 0o20666 1 7\nlseek ESPIPE\n";
    for mode in Mode::VIEWS {
        let view = Cmd::new([py.as_str(), "-c", PY_DEVICE])
            .umview_opts(["-p", "echodev"])
            .run(mode);
        view.assert_ok();
        assert_eq!(view.out(), expected, "{}", view.dump());
    }
}
