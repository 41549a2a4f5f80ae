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
        // The host's fds are counted from outside (see fd_holder).
        .env("UMVIEW_DUMPABLE", "1")
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

/// The short version of `scripts/soak.sh`: rounds of a mixed load in one
/// view (a generated C project built with `make -j4` in a viewfs cow
/// mount, a Python thread pool in a umfusereal mount, a tree copied into
/// an ext4 image mounted by fuse2fs and compared), the host sampled after
/// a warm-up and at the end, at a pause between rounds.
#[test]
fn the_host_does_not_grow_with_rounds_of_mixed_load() {
    let t = TempDir::new("soak-mixed");
    const FILES: usize = 12;
    let mut main = String::from("#include <stdio.h>\n");
    let mut objs = String::from("main.o");
    let mut sum = String::from("0");
    for i in 1..=FILES {
        main.push_str(&format!("int f{i}(void);\n"));
        objs.push_str(&format!(" f{i}.o"));
        sum.push_str(&format!(" + f{i}()"));
        t.write(
            format!("proj/f{i}.c"),
            format!("int f{i}(void) {{ return {i}; }}\n"),
        );
    }
    main.push_str(&format!(
        "int main(void) {{ printf(\"%d\\n\", {sum}); return 0; }}\n"
    ));
    t.write("proj/main.c", main);
    t.write(
        "proj/Makefile",
        format!("prog: {objs}\n\t$(CC) -o $@ {objs}\nclean:\n\trm -f prog {objs}\n"),
    );
    t.write(
        "pool.py",
        "import concurrent.futures, os, sys\n\
         d = sys.argv[1]\n\
         def w(i):\n\
         \x20   p = os.path.join(d, 'f%d' % i)\n\
         \x20   with open(p, 'w') as f: f.write('x' * (i * 10))\n\
         \x20   with open(p) as f: n = len(f.read())\n\
         \x20   os.stat(p); os.listdir(d); os.unlink(p)\n\
         \x20   return n\n\
         with concurrent.futures.ThreadPoolExecutor(16) as ex:\n\
         \x20   print(sum(ex.map(w, range(64))))\n",
    );
    for dir in ["layer", "realsrc", "real", "m"] {
        t.mkdir(dir);
    }
    for i in 0..40 {
        t.write(
            format!("tree/d{}/f{i}", i % 4),
            format!("{i}\n").repeat(i + 1),
        );
    }
    let ext = t.path().join("ext.img");
    let out = run(&[
        "/usr/sbin/mkfs.ext4",
        "-q",
        "-F",
        &ext.to_string_lossy(),
        "16M",
    ]);
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
    let want_sum: usize = (1..=FILES).sum();
    let round = format!(
        "(cd proj && make -s clean && make -s -j4 >/dev/null) && [ \"$(proj/prog)\" = {want_sum} ] || echo \"make failed in $i\"; \
         [ \"$({py} pool.py real)\" = 20160 ] || echo \"pool failed in $i\"; \
         {vm} -t umfuseext4 -o rw+ ext.img m && cp -r tree m/tree && diff -r tree m/tree && rm -rf m/tree && {vu} m \
           || echo \"ext4 failed in $i\"",
        py = q(&viewos_tests::python3()),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
    );
    let script = format!(
        "cd {d} || exit 1; {vm} -t viewfs -o cow layer proj || exit 9; {vm} -t umfusereal realsrc real || exit 9; \
         for i in $(seq 1 3); do {round}; done; : > warm; \
         until [ -e go ]; do sleep 0.05; done; \
         for i in $(seq 4 15); do {round}; done; : > done; \
         until [ -e end ]; do sleep 0.05; done; echo finished",
        d = q(t.path()),
        vm = q(&view_command("viewmount")),
    );
    let mut child = Cmd::bash(&script)
        .umview_opts(["-p", "viewfs", "-p", "umfuse"])
        .command(Mode::View)
        // The host's fds are counted from outside (see fd_holder).
        .env("UMVIEW_DUMPABLE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start umview");
    let pid = child.id();
    wait_for(&t.path().join("warm"), &mut child);
    std::thread::sleep(Duration::from_secs(1));
    let warm = sample(pid);
    t.write("go", "");
    wait_for(&t.path().join("done"), &mut child);
    std::thread::sleep(Duration::from_secs(1));
    // The pool's threads may have kept more of the host's workers busy
    // at the end than at the warm-up; idle ones leave after 30 s.
    let settle = Instant::now();
    let mut end = sample(pid);
    while end.threads > warm.threads + 2 && settle.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(500));
        end = sample(pid);
    }
    t.write("end", "");
    let out = child.wait_with_output().expect("wait for umview");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout == "finished\n",
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("mixed soak: after 3 rounds {warm:?}, after 15 rounds {end:?}");
    assert!(
        end.fds <= warm.fds + 2,
        "open files grew: {warm:?} -> {end:?}"
    );
    assert!(
        end.threads <= warm.threads + 2,
        "threads grew: {warm:?} -> {end:?}"
    );
    assert!(
        end.rss_kib <= warm.rss_kib + 8 * 1024,
        "memory grew by more than 8 MiB: {warm:?} -> {end:?}"
    );
    // TARGET of the cow mount: only its sources, no object landed there.
    assert!(!t.path().join("proj/prog").exists() && !t.path().join("proj/main.o").exists());
    let fsck = run(&["/usr/sbin/e2fsck", "-fn", &ext.to_string_lossy()]);
    assert!(fsck.status.success(), "e2fsck -fn: {fsck:?}");
}
