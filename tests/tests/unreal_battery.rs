//! The `unreal` battery: the same programs on a directory `X`, on
//! `/unreal/X` (the same tree served through the Service API) and on
//! `/unreal/unreal/X` (served through `/unreal`: module nesting) must give
//! the same results. Paths in outputs are compared after removing the
//! prefix. Every case runs twice more with `-p unreal,served`, where the
//! mounts serve their files themselves (placeholder fds, every read, write
//! and listing answered by the service) instead of handing them over.

use viewos_tests::{compile_c, require_tool, Cmd, Mode, TempDir};

const VFD: &str = include_str!("../fixtures/vfd.c");

/// A small tree with the kinds of files the programs meet.
fn make_tree(t: &TempDir) {
    t.write("tree/a.txt", "pear\napple\nfig\n");
    t.write("tree/b.txt", "3\n1\n2\n");
    t.write("tree/sub/deep/c.txt", "deep\n");
    t.write("tree/sub/space name.txt", "spaces\n");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    t.write("tree/big.bin", big);
    std::os::unix::fs::symlink("a.txt", t.join("tree/link")).unwrap();
    std::os::unix::fs::symlink("missing", t.join("tree/dangling")).unwrap();
    std::fs::hard_link(t.join("tree/b.txt"), t.join("tree/hard")).unwrap();
}

/// Where the tree is seen in a view.
const PREFIXES: [&str; 2] = ["/unreal", "/unreal/unreal"];

/// The module, handing files over or serving them.
const MODULES: [&str; 2] = ["unreal", "unreal,served"];

/// Runs `script` with `$X` set to the tree's path natively, and to each
/// prefix + that path in both view modes; outputs must match.
fn same_on_both(t: &TempDir, script: &str, reset: impl Fn()) {
    let x = t.join("tree").display().to_string();
    let native = Cmd::sh(script).env("X", &x).run(Mode::Native);
    native.assert_ok();
    for (module, prefix, mode) in variants() {
        reset();
        let view = Cmd::sh(script)
            .env("X", format!("{prefix}{x}"))
            .umview_opts(["-p", module])
            .run(mode);
        view.assert_ok();
        assert_eq!(
            view.out().replace(&format!("{prefix}/"), "/"),
            native.out(),
            "-p {module}: {}",
            view.dump()
        );
    }
}

/// Every module option, prefix and view mode.
fn variants() -> impl Iterator<Item = (&'static str, &'static str, Mode)> {
    MODULES.into_iter().flat_map(|m| {
        PREFIXES
            .into_iter()
            .flat_map(move |p| Mode::VIEWS.into_iter().map(move |mode| (m, p, mode)))
    })
}

#[test]
fn listing_finding_sorting() {
    let t = TempDir::new("battery-list");
    make_tree(&t);
    same_on_both(
        &t,
        "ls -lR --time-style=+%s \"$X\" | grep -v '^total'; \
         find \"$X\" | sort; find \"$X\" -type f -name '*.txt' -newer \"$X/big.bin\" | sort; \
         sort \"$X/a.txt\" \"$X/b.txt\"; wc -c \"$X/big.bin\"; md5sum \"$X/big.bin\" | cut -d' ' -f1; \
         readlink \"$X/link\"; cat \"$X/link\"; stat -c '%h %s %F' \"$X/hard\" \"$X/sub\"",
        || {},
    );
}

#[test]
fn copying_and_archiving() {
    require_tool("tar", "tar");
    let t = TempDir::new("battery-copy");
    make_tree(&t);
    let reset = || {
        let _ = std::fs::remove_dir_all(t.join("tree/../copy"));
        let _ = std::fs::remove_file(t.join("tree/../archive.tar"));
        let _ = std::fs::remove_dir_all(t.join("tree/../untar"));
    };
    reset();
    same_on_both(
        &t,
        "cd \"$X/..\" && cp -a tree copy && ls -lR --time-style=+%s copy | grep -v '^total' && \
         tar cf archive.tar tree && tar tvf archive.tar --full-time | awk '{print $1, $3, $6}' | sort && \
         mkdir untar && tar xf archive.tar -C untar && diff -r --no-dereference tree untar/tree && echo same && \
         rm -r copy untar archive.tar && echo cleaned",
        reset,
    );
}

#[test]
fn python_mmap_scandir_and_files() {
    let t = TempDir::new("battery-py");
    make_tree(&t);
    let prog = r#"
import mmap, os, sys
x = os.environ["X"]
with open(x + "/big.bin", "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(len(m), m[1000], m[-1], sum(m[:5000]))
with open(x + "/rw.bin", "w+b") as f:
    f.truncate(8192)
    m = mmap.mmap(f.fileno(), 8192)
    m[100:105] = b"hello"
    m.flush(); m.close()
with open(x + "/rw.bin", "rb") as f:
    f.seek(100); print(f.read(5))
os.remove(x + "/rw.bin")
def walk(d):
    for e in sorted(os.scandir(d), key=lambda e: e.name):
        print(e.name, e.is_dir(follow_symlinks=False), e.is_symlink(), e.stat(follow_symlinks=False).st_size if not e.is_symlink() else "-")
        if e.is_dir(follow_symlinks=False):
            walk(e.path)
walk(x)
"#;
    same_on_both(
        &t,
        &format!("python3 -c '{}'", prog.replace('\'', "'\\''")),
        || {},
    );
}

#[test]
fn fd_semantics_of_a_c_program() {
    let t = TempDir::new("battery-vfd");
    make_tree(&t);
    let exe = compile_c(t.path(), "vfd", VFD, &[]);
    let exe_s = exe.display().to_string();
    let reset = || {
        for i in 0..5 {
            let _ = std::fs::remove_file(t.join(format!("tree/entry{i}")));
        }
        let _ = std::fs::remove_file(t.join("tree/data"));
    };
    reset();
    // The program runs from the real path natively and from /unreal in the
    // view (exec from a virtual path).
    let x = t.join("tree").display().to_string();
    let native = Cmd::new([exe_s.as_str(), x.as_str(), exe_s.as_str()]).run(Mode::Native);
    native.assert_ok();
    for (module, prefix, mode) in variants() {
        reset();
        let vexe = format!("{prefix}{exe_s}");
        let view = Cmd::new([vexe.as_str(), &format!("{prefix}{x}"), vexe.as_str()])
            .umview_opts(["-p", module])
            .run(mode);
        view.assert_ok();
        assert_eq!(view.out(), native.out(), "-p {module}: {}", view.dump());
    }
}

#[test]
fn cd_into_the_mount_and_work_there() {
    let t = TempDir::new("battery-cd");
    make_tree(&t);
    same_on_both(
        &t,
        "cd \"$X/sub\" && pwd && ls && cat deep/c.txt && cd deep && cat ../../a.txt | sort && \
         /bin/pwd && cd .. && ls -d */",
        || {},
    );
}
