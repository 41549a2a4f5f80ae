//! Third-party modules: the `hello` example as a shared library loaded with
//! `-p PATH.so` or `um_add_service`, found on `LD_LIBRARY_PATH`, refused
//! when built for another viewos-core; and linked statically into the
//! `embed` example host.

use std::path::PathBuf;

use viewos_tests::{require_tool, umview_bin, view_command, Cmd, Mode, TempDir};

const TEXT: &str = "hello from a third-party View-OS service\n";

fn hello_so() -> PathBuf {
    let p = umview_bin().with_file_name("libhello_service.so");
    assert!(p.is_file(), "{} is missing: run cargo build", p.display());
    p
}

#[test]
fn a_module_library_serves_its_file_system() {
    let so = hello_so();
    for mode in Mode::VIEWS {
        let out = Cmd::sh(
            "cat /hello/hello.txt; ls /hello; stat -c '%s %A' /hello/hello.txt; \
                           (echo x > /hello/hello.txt) 2>&1 | grep -c 'Read-only'",
        )
        .umview_opts(["-p", &so.to_string_lossy()])
        .run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            format!("{TEXT}hello.txt\n{} -r--r--r--\n1\n", TEXT.len()),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn module_options_and_library_search_path() {
    let so = hello_so();
    let dir = so.parent().expect("a directory").to_path_buf();
    let out = Cmd::new(["cat", "/greetings/hello.txt"])
        .env("LD_LIBRARY_PATH", &dir)
        .umview_opts(["-p", "libhello_service.so,/greetings"])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), TEXT);
}

#[test]
fn a_module_library_added_at_run_time() {
    // With --no-seccomp every call stops, so a file-system module can be
    // added to a running view.
    let so = hello_so();
    let ls = view_command("um_ls_service");
    let add = view_command("um_add_service");
    let del = view_command("um_del_service");
    let script = format!(
        "{add} {so} && cat /hello/hello.txt && {ls} && {del} hello; echo del $?",
        add = add.display(),
        so = so.display(),
        ls = ls.display(),
        del = del.display()
    );
    let out = Cmd::sh(&script).run(Mode::ViewNoSeccomp);
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!("{TEXT}hello: a read-only file system with one file (example)\ndel 1\n"),
        "{}",
        out.dump()
    );
    assert!(out.err().contains("has mounts"), "{}", out.dump());
}

#[test]
fn a_library_built_for_another_api_is_refused() {
    require_tool("gcc", "gcc");
    let t = TempDir::new("modules-wrong");
    let src = t.write("wrong.c", include_str!("../fixtures/wrong_module.c"));
    let so = t.join("libwrong.so");
    let built = Cmd::new([
        "gcc".to_string(),
        "-shared".into(),
        "-fPIC".into(),
        "-o".into(),
        so.display().to_string(),
        src.display().to_string(),
    ])
    .run(Mode::Native);
    built.assert_ok();
    let out = Cmd::new(["true"])
        .umview_opts(["-p", &so.to_string_lossy()])
        .run(Mode::View);
    out.assert_code(2);
    let err = out.err();
    assert!(
        err.contains("built for viewos-core 0.0.1 with rustc 1.0.0"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "this host has viewos-core {}",
            viewos_core_version()
        )),
        "{err}"
    );
    // Not a module at all.
    let out = Cmd::new(["true"])
        .umview_opts(["-p", &src.with_file_name("nothing.so").to_string_lossy()])
        .run(Mode::View);
    out.assert_code(2);
    assert!(out.err().contains("cannot load"), "{}", out.dump());
}

fn viewos_core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[test]
fn a_host_embedding_the_module_statically() {
    let embed = umview_bin().with_file_name("embed");
    let out = Cmd::new([
        embed.to_string_lossy().to_string(),
        "cat".into(),
        "/hello/hello.txt".into(),
    ])
    .run(Mode::Native);
    out.assert_ok();
    assert_eq!(out.out(), TEXT);
}
