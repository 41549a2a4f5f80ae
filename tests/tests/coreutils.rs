//! Coreutils and friends on files the test creates, natively and in a view:
//! the same output, the same exit status, the same files left behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use viewos_tests::{require_tool, transparent, Cmd, Mode, TempDir};

/// Builds a small tree with fixed times: regular files, an executable, a
/// read-only file, a subdirectory, symlinks (good and dangling), a hard
/// link, a fifo, a name with spaces, an empty file and a sparse file.
fn make_tree(root: &Path) {
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    };
    w("fruits.txt", b"pear\napple\nfig\napple\nbanana\ncherry\n");
    w("numbers.txt", b"10\n9\n100\n-3\n42\n7.5\n");
    w("table.csv", b"b,2,x\na,10,y\nc,1,z\na,3,w\n");
    w("with space.txt", b"spaces in the name\n");
    w("empty", b"");
    w("sub/deeper/file.txt", b"deep\n");
    w("sub/script.sh", b"#!/bin/sh\necho script\n");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    w("binary.bin", &big);
    std::fs::set_permissions(
        root.join("sub/script.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    w("readonly.txt", b"read only\n");
    std::fs::set_permissions(
        root.join("readonly.txt"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    std::os::unix::fs::symlink("fruits.txt", root.join("link-to-fruits")).unwrap();
    std::os::unix::fs::symlink("no-such-target", root.join("dangling")).unwrap();
    std::fs::hard_link(root.join("numbers.txt"), root.join("hardlink")).unwrap();
    let fifo = std::ffi::CString::new(root.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let sparse = std::fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len(10 * 1024 * 1024).unwrap();
    // Fixed times everywhere (directories last), so listings are stable.
    let out = Cmd::new([
        "find",
        ".",
        "-depth",
        "-exec",
        "touch",
        "-h",
        "-d",
        "2001-02-03 04:05:06",
        "{}",
        "+",
    ])
    .cwd(root)
    .run(Mode::Native);
    out.assert_ok();
}

#[test]
fn listing_and_inspecting_files() {
    let tmp = TempDir::new("coreutils-ls");
    let root = tmp.mkdir("tree");
    make_tree(&root);
    for argv in [
        &["ls", "-la"][..],
        &["ls", "-laR", "--time-style=full-iso"],
        &["ls", "-li", "-1", "--color=never"],
        &["ls", "-lS", "-r"],
        &[
            "stat",
            "-c",
            "%n %s %a %F %h %Y",
            "fruits.txt",
            "sub",
            "fifo",
            "dangling",
            "sparse",
        ],
        &["du", "-a", "--apparent-size", "-b", "."],
        &["find", ".", "-printf", "%p %y %m %s\\n"],
        &["readlink", "-f", "link-to-fruits"],
        &["test", "-w", "readonly.txt"],
    ] {
        transparent(&Cmd::new(argv).cwd(&root));
    }
    // `ls` of something missing: status 2 and the message.
    let o = transparent(&Cmd::new(["ls", "-la", "missing-file", "fruits.txt"]).cwd(&root));
    assert_eq!(o.status.shell(), 2);
}

#[test]
fn text_processing() {
    let tmp = TempDir::new("coreutils-text");
    let root = tmp.mkdir("tree");
    make_tree(&root);
    let cases: &[&[&str]] = &[
        &["sort", "fruits.txt"],
        &["sort", "-n", "numbers.txt"],
        &["sort", "-g", "-r", "numbers.txt"],
        &["sort", "-t,", "-k2,2n", "table.csv"],
        &["sort", "-u", "fruits.txt"],
        &["sort", "--parallel=2", "-S", "1M", "binary.bin"],
        &[
            "wc",
            "fruits.txt",
            "numbers.txt",
            "binary.bin",
            "with space.txt",
        ],
        &["sha256sum", "fruits.txt", "binary.bin", "sparse", "empty"],
        &["md5sum", "binary.bin"],
        &["cksum", "binary.bin"],
        &["head", "-n", "2", "fruits.txt"],
        &["tail", "-c", "20", "fruits.txt"],
        &["cut", "-d,", "-f1,3", "table.csv"],
        &["tr", "a-z", "A-Z", "--", "fruits.txt"],
        &["uniq", "-c", "fruits.txt"],
        &["cat", "-A", "table.csv", "with space.txt"],
        &["od", "-A", "x", "-t", "x1z", "-N", "64", "binary.bin"],
        &["base64", "fruits.txt"],
        &["nl", "fruits.txt"],
        &["tac", "fruits.txt"],
        &["paste", "fruits.txt", "numbers.txt"],
        &["join", "-t,", "table.csv", "table.csv"],
        &["comm", "fruits.txt", "numbers.txt"],
        &[
            "split",
            "--verbose",
            "-b",
            "100000",
            "binary.bin",
            "/dev/null/x",
        ],
        &["expr", "6", "*", "7"],
        &["seq", "-s", ",", "1", "3", "20"],
        &["printf", "%05d|%-4s|%x\\n", "42", "ab", "255"],
        &["basename", "/a/b/c.txt", ".txt"],
        &["sha256sum", "missing-file"],
    ];
    for argv in cases {
        transparent(&Cmd::new(*argv).cwd(&root));
    }
    // tr reads stdin only; sort from stdin.
    let o = transparent(&Cmd::new(["sort", "-r"]).stdin("a\nc\nb\n"));
    assert_eq!(o.out(), "c\nb\na\n");
}

/// Runs `argv` in `dir_for(mode)` for each mode and returns nothing: the
/// caller compares the trees the runs left.
fn run_in_each(argv: &[&str], dir_for: impl Fn(Mode) -> std::path::PathBuf) {
    let native = Cmd::new(argv).cwd(dir_for(Mode::Native)).run(Mode::Native);
    for mode in Mode::VIEWS {
        let o = Cmd::new(argv).cwd(dir_for(mode)).run(mode);
        viewos_tests::assert_same(&native, &o);
    }
}

/// A listing of a tree that must be equal between copies: names, types,
/// modes, sizes, link targets, mtimes, and the content hash of files.
fn describe_tree(dir: &Path) -> String {
    let o = Cmd::sh(
        "find . -printf '%p|%y|%m|%s|%l|%T+|%n\\n' | sort; \
         find . -type f ! -name fifo -exec sha256sum {} + | sort",
    )
    .cwd(dir)
    .run(Mode::Native);
    o.assert_ok();
    o.out()
}

#[test]
fn copying_moving_and_removing_files() {
    let tmp = TempDir::new("coreutils-cp");
    for mode in Mode::ALL {
        let d = tmp.mkdir(mode.tag());
        make_tree(&d.join("src"));
    }
    let dir = |m: Mode| tmp.join(m.tag());
    // cp -a: a faithful copy (times, modes, links, fifo, sparse file).
    run_in_each(&["cp", "-a", "src", "copy"], dir);
    run_in_each(&["cp", "-r", "--preserve=mode", "src/sub", "copy2"], dir);
    run_in_each(&["mv", "copy2", "moved"], dir);
    run_in_each(&["mkdir", "-p", "a/b/c"], dir);
    run_in_each(&["ln", "-s", "../../src/fruits.txt", "a/b/link"], dir);
    run_in_each(&["touch", "-d", "2010-01-01 00:00:00", "a/b/c/new"], dir);
    run_in_each(&["chmod", "-R", "go-rwx", "a"], dir);
    run_in_each(
        &[
            "dd",
            "if=src/binary.bin",
            "of=dd.out",
            "bs=4096",
            "count=10",
            "status=none",
        ],
        dir,
    );
    run_in_each(&["truncate", "-s", "12345", "dd.out"], dir);
    run_in_each(&["rm", "-r", "moved"], dir);
    run_in_each(&["rm", "no-such-file"], dir);
    run_in_each(&["rmdir", "a"], dir);
    run_in_each(
        &[
            "install",
            "-m",
            "0750",
            "-D",
            "src/fruits.txt",
            "inst/deep/fruits",
        ],
        dir,
    );
    require_tool("tar", "tar");
    run_in_each(
        &[
            "tar",
            "cf",
            "src.tar",
            "--sort=name",
            "--mtime=2001-01-01",
            "--owner=0",
            "--group=0",
            "src",
        ],
        dir,
    );
    run_in_each(&["tar", "tvf", "src.tar"], dir);
    run_in_each(&["mkdir", "untar"], dir);
    run_in_each(&["tar", "xf", "src.tar", "-C", "untar"], dir);
    require_tool("gzip", "gzip");
    run_in_each(&["gzip", "-9", "-n", "-k", "src/binary.bin"], dir);
    run_in_each(&["sha256sum", "src.tar", "src/binary.bin.gz"], dir);

    // The trees the three runs left are the same.
    let a = describe_tree(&dir(Mode::Native));
    // The source trees have fixed times and cp -a, tar and gzip kept them;
    // what the commands created or changed has a new time, masked here.
    let strip = |s: &str| -> String {
        s.lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split('|').collect();
                if f.len() == 7 && !f[5].starts_with("2001-") && !f[5].starts_with("2010-") {
                    f[5] = "(new)";
                }
                f.join("|")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        a.contains("./copy/fifo|p|644|"),
        "cp -a copied the fifo:\n{a}"
    );
    for mode in Mode::VIEWS {
        let b = describe_tree(&dir(mode));
        assert_eq!(
            strip(&a),
            strip(&b),
            "[{}] the tree differs from the native one:\n{}",
            mode.name(),
            viewos_tests::diff(&strip(&a), &strip(&b))
        );
    }
}

#[test]
fn many_small_processes() {
    // xargs and find -exec start hundreds of short processes.
    let tmp = TempDir::new("coreutils-many");
    let root = tmp.mkdir("tree");
    for i in 0..200 {
        std::fs::write(root.join(format!("f{i:03}")), format!("{i}\n")).unwrap();
    }
    let o = transparent(
        &Cmd::sh("ls | xargs -n 1 -P 4 cat | sort -n | sha256sum; find . -type f -exec wc -c {} \\; | sort | head -3")
            .cwd(&root),
    );
    o.assert_ok();
}
