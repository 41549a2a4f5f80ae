//! A short soak run (the hour-long one runs outside CI): one view mounts,
//! uses and unmounts file systems hundreds of times (in-process FUSE
//! servers, fuse2fs helpers the view starts, served and backed files),
//! and the host's memory, open files and threads must not grow with the
//! number of rounds. The host is sampled from outside after a warm-up and
//! at the end.

use std::process::Stdio;
use std::time::{Duration, Instant};

use viewos_tests::{
    quote_path as q, run_native as run, run_native_ok as run_ok, view_command, Cmd, Mode, TempDir,
};

/// What /proc says of a process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kib: u64,
    fds: usize,
    threads: usize,
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let count = |dir: String| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    Sample {
        rss_kib: field("VmRSS:"),
        fds: count(format!("/proc/{pid}/fd")),
        threads: count(format!("/proc/{pid}/task")),
    }
}

/// Waits until `path` exists (the view's script reached a phase).
fn wait_for(path: &std::path::Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the view ended early: {status:?}");
        }
        assert!(Instant::now() < deadline, "no {}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_host_does_not_grow_with_rounds_of_mounts() {
    let t = TempDir::new("soak");
    let fat = t.path().join("fat.img");
    run_ok(&["/usr/sbin/mkfs.vfat", "-C", &fat.to_string_lossy(), "4096"]);
    let ext = t.path().join("ext.img");
    let out = run(&[
        "/usr/sbin/mkfs.ext4",
        "-q",
        "-F",
        &ext.to_string_lossy(),
        "8M",
    ]);
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
    t.mkdir("src/d");
    t.write("src/d/f", "served\n");
    t.mkdir("m1");
    t.mkdir("m2");
    t.mkdir("m3");
    let round = format!(
        "{vm} -t umfusefat fat.img m1 && echo $i > m1/n && cat m1/n >/dev/null && {vu} m1; \
         {vm} -t umfusereal src m2 && cat m2/d/f >/dev/null && ls m2/d >/dev/null && {vu} m2; \
         if [ $((i % 10)) = 0 ]; then {vm} -t umfuseext4 ext.img m3 && echo $i > m3/n && {vu} m3; fi",
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
    );
    let script = format!(
        "cd {d}; for i in $(seq 1 40); do {round}; done; : > warm; \
         until [ -e go ]; do sleep 0.05; done; \
         for i in $(seq 41 240); do {round}; done; cat m1/n 2>/dev/null; : > done; \
         until [ -e end ]; do sleep 0.05; done; echo finished",
        d = q(t.path()),
    );
    let mut child = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .command(Mode::View)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start umview");
    let pid = child.id();
    wait_for(&t.path().join("warm"), &mut child);
    // Idle workers leave after 30 s: compare like with like, after the
    // same pause.
    std::thread::sleep(Duration::from_secs(1));
    let warm = sample(pid);
    t.write("go", "");
    wait_for(&t.path().join("done"), &mut child);
    std::thread::sleep(Duration::from_secs(1));
    let end = sample(pid);
    t.write("end", "");
    let out = child.wait_with_output().expect("wait for umview");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.ends_with("finished\n"),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("soak: after 40 rounds {warm:?}, after 240 rounds {end:?}");
    assert!(
        end.fds <= warm.fds + 2,
        "open files grew: {warm:?} -> {end:?}"
    );
    assert!(
        end.threads <= warm.threads + 4,
        "threads grew: {warm:?} -> {end:?}"
    );
    assert!(
        end.rss_kib <= warm.rss_kib + 8 * 1024,
        "memory grew by more than 8 MiB: {warm:?} -> {end:?}"
    );
    let fsck = run(&["/usr/sbin/fsck.fat", "-n", &fat.to_string_lossy()]);
    assert!(fsck.status.success(), "fsck.fat -n: {fsck:?}");
    let fsck = run(&["/usr/sbin/e2fsck", "-fn", &ext.to_string_lossy()]);
    assert!(fsck.status.success(), "e2fsck -fn: {fsck:?}");
}
