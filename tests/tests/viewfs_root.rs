//! An unprivileged chroot: a Debian root file system made by `debootstrap`
//! (`scripts/make-test-rootfs.sh`, run as root by `scripts/test.sh`)
//! mounted with viewfs on the view's `/`, with `/proc`, `/dev`, `/sys` and
//! `/tmp` left to the host (`except=`). Debian's own bash, dpkg, coreutils,
//! findutils and python3 run from it, and what they print is compared with
//! the same question asked of the tree from outside.

use std::path::{Path, PathBuf};

use viewos_tests::{quote_path as q, report_skipped, Cmd, Mode, Outcome, TempDir};

/// Where `scripts/make-test-rootfs.sh` puts the tree (`VIEWOS_TEST_ROOTFS`
/// names another).
fn rootfs() -> Option<PathBuf> {
    let dir = std::env::var_os("VIEWOS_TEST_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/viewos-tests/rootfs-bookworm"));
    if dir.join(".viewos-complete").exists() {
        Some(dir)
    } else {
        report_skipped(
            "viewfs_root: Debian root file system",
            &format!(
                "{} is missing: run scripts/make-test-rootfs.sh as root (needs the Debian mirror)",
                dir.display()
            ),
        );
        None
    }
}

/// The `-p` spec mounting `root` on `/`.
fn moved_root(root: &Path) -> String {
    format!(
        "viewfs,move,except=/proc:/dev:/sys:/tmp,source={},target=/",
        root.display()
    )
}

fn in_root(specs: &[String], script: &str) -> Outcome {
    let mut opts = Vec::new();
    for s in specs {
        opts.push("-p".to_string());
        opts.push(s.clone());
    }
    // Debian's bash from the tree, with a PATH of the tree's.
    // Started in `/`, the moved root's (the test's cwd is not in it).
    Cmd::new(["/bin/bash", "-c", script])
        .cwd("/")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("COLUMNS", "200")
        .umview_opts(opts)
        .timeout(std::time::Duration::from_secs(60))
        .run(Mode::View)
}

#[test]
fn debian_tools_run_from_the_moved_root() {
    let Some(root) = rootfs() else { return };
    let out = in_root(
        &[moved_root(&root)],
        "cat /etc/debian_version; dpkg -l; echo @@@@; ls /; echo @@@@; \
         find /etc -name '*.conf' | sort; echo @@@@; \
         python3 -c 'import sys, os; print(sys.version_info[:2], sys.executable, os.path.exists(\"/etc/debian_version\"))'; \
         readlink /proc/self/exe",
    );
    out.assert_ok();
    let text = out.out();
    let parts: Vec<&str> = text.split("@@@@\n").collect();
    assert_eq!(parts.len(), 4, "{}", out.dump());
    // The same questions asked of the tree from outside.
    let version = std::fs::read_to_string(root.join("etc/debian_version")).expect("version");
    let dpkg = Cmd::new(["dpkg", "-l"])
        .env("COLUMNS", "200")
        .env("DPKG_ADMINDIR", root.join("var/lib/dpkg").as_os_str())
        .run(Mode::Native);
    dpkg.assert_ok();
    assert!(dpkg.out().lines().count() > 80, "{}", dpkg.dump());
    assert_eq!(
        parts[0],
        format!("{version}{}", dpkg.out()),
        "{}",
        out.dump()
    );
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(
        parts[1],
        format!("{}\n", names.join("\n")),
        "{}",
        out.dump()
    );
    let find = Cmd::bash(&format!(
        "cd {r} && find etc -name '*.conf' | sed 's|^|/|' | sort",
        r = q(&root)
    ))
    .run(Mode::Native);
    find.assert_ok();
    assert_eq!(parts[2], find.out(), "{}", out.dump());
    let mut tail = parts[3].lines();
    assert_eq!(
        tail.next(),
        Some("(3, 11) /usr/bin/python3 True"),
        "{}",
        out.dump()
    );
    // The kernel ran the tree's loader, which loaded readlink.
    let exe = tail.next().unwrap_or_default();
    assert!(
        exe.starts_with(&root.display().to_string()) && exe.contains("ld-linux"),
        "{}",
        out.dump()
    );
}

/// A copy-on-write layer over the moved root: programs change the tree
/// freely, the changes land in the layer, the tree is left as it was.
#[test]
fn a_cow_layer_over_the_moved_root_keeps_the_tree_unchanged() {
    let Some(root) = rootfs() else { return };
    let t = TempDir::new("viewfs-root-cow");
    let layer = t.mkdir("layer");
    let cow = format!(
        "viewfs,cow,except=/proc:/dev:/sys:/tmp,source={},target=/",
        layer.display()
    );
    let before = std::fs::read(root.join("etc/issue")).expect("issue");
    let script = "set -e; echo changed > /etc/issue; rm /etc/hostname; mkdir -p /opt/new; \
                  echo made > /opt/new/file; chmod 600 /opt/new/file; ln -s /etc/issue /opt/new/link; \
                  python3 -c 'open(\"/var/py\", \"w\").write(\"py\")'; \
                  cat /etc/issue /opt/new/link /var/py; echo; test ! -e /etc/hostname && echo gone; \
                  stat -c %a /opt/new/file; dpkg -s bash | grep -c '^Status: install ok installed'";
    let out = in_root(&[moved_root(&root), cow], script);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "changed\nchanged\npy\ngone\n600\n1\n",
        "{}",
        out.dump()
    );
    // The tree: as it was.
    assert_eq!(
        std::fs::read(root.join("etc/issue")).expect("issue"),
        before
    );
    assert!(root.join("etc/hostname").exists());
    assert!(!root.join("opt/new").exists() && !root.join("var/py").exists());
    // The layer: the changes.
    assert_eq!(
        std::fs::read_to_string(layer.join("etc/issue")).expect("copied up"),
        "changed\n"
    );
    assert_eq!(
        std::fs::read_to_string(layer.join("opt/new/file")).expect("new"),
        "made\n"
    );
    // Mounted again, the layer shows the same changed tree.
    let again = format!(
        "viewfs,cow,except=/proc:/dev:/sys:/tmp,source={},target=/",
        layer.display()
    );
    let out = in_root(
        &[moved_root(&root), again],
        "cat /etc/issue /var/py; echo; test -e /etc/hostname || echo gone",
    );
    out.assert_ok();
    assert_eq!(out.out(), "changed\npy\ngone\n", "{}", out.dump());
}

/// Package management in the moved root, as a fake root (`--root-id`) over
/// a cow layer: a package built with dpkg-deb is installed with dpkg -i,
/// runs, and is listed; the tree itself is not touched.
#[test]
fn dpkg_installs_a_package_into_a_cow_layer_as_fake_root() {
    let Some(root) = rootfs() else { return };
    let t = TempDir::new("viewfs-root-dpkg");
    let layer = t.mkdir("layer");
    let cow = format!(
        "viewfs,cow,except=/proc:/dev:/sys:/tmp,source={},target=/",
        layer.display()
    );
    let script = r#"set -e
mkdir -p /opt/pkg/DEBIAN /opt/pkg/usr/bin
printf 'Package: hello-view\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n' > /opt/pkg/DEBIAN/control
printf '#!/bin/sh\necho hello from the package\n' > /opt/pkg/usr/bin/hello-view
chmod 755 /opt/pkg/usr/bin/hello-view
dpkg-deb -b /opt/pkg /opt/h.deb > /dev/null
dpkg -i /opt/h.deb > /dev/null
hello-view
dpkg-query -W -f='${Status} ${Version}\n' hello-view
stat -c '%U %G %a' /usr/bin/hello-view
id -u"#;
    let out = Cmd::new(["/bin/bash", "-c", script])
        .cwd("/")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .umview_opts(["--root-id", "-p", &moved_root(&root), "-p", &cow])
        .timeout(std::time::Duration::from_secs(120))
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "hello from the package\ninstall ok installed 1.0\nroot root 755\n0\n",
        "{}",
        out.dump()
    );
    assert!(!root.join("usr/bin/hello-view").exists());
    assert!(layer.join("usr/bin/hello-view").exists());
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).expect("status");
    assert!(!status.contains("hello-view"));
}
