use super::*;
use viewos_core::real::RealFs;

fn mounted() -> (UmBinfmt, Arc<dyn FileSystem>) {
    let s = UmBinfmt::new();
    let fs = s
        .mount(&MountRequest::default(), Arc::new(RealFs))
        .expect("mounts");
    (s, fs)
}

fn handle(fs: &dyn FileSystem, path: &str, flags: i32) -> Box<dyn FileHandle> {
    match fs.open(Path::new(path), flags, 0) {
        Ok(Opened::Served(h)) => h,
        other => panic!("{path}: {other:?}"),
    }
}

fn write(fs: &dyn FileSystem, path: &str, data: &[u8]) -> Result<usize, Errno> {
    handle(fs, path, libc::O_WRONLY | libc::O_TRUNC).write(0, data)
}

fn read(fs: &dyn FileSystem, path: &str) -> String {
    let h = handle(fs, path, libc::O_RDONLY);
    let mut buf = [0u8; 512];
    let n = h.read(0, &mut buf).expect("readable");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn names(fs: &dyn FileSystem) -> Vec<String> {
    let h = handle(fs, "/", libc::O_RDONLY | libc::O_DIRECTORY);
    let mut out = Vec::new();
    h.read_dir(0, &mut |e| {
        out.push(String::from_utf8_lossy(e.name).into_owned());
        true
    })
    .expect("listable");
    out
}

fn claim(s: &UmBinfmt, filename: &[u8], head: &[u8]) -> Option<Interpreter> {
    s.exec_interpreter(&ExecRequest { filename, head })
        .map(|r| r.expect("no error"))
}

#[test]
fn register_list_read_and_match() {
    let (s, fs) = mounted();
    assert_eq!(names(fs.as_ref()), [".", "..", "status", "register"]);
    assert_eq!(read(fs.as_ref(), "/status"), "enabled\n");
    let line = b":foo:E::foo::/usr/bin/python3:\n";
    assert_eq!(write(fs.as_ref(), "/register", line), Ok(line.len()));
    assert_eq!(names(fs.as_ref()), [".", "..", "status", "register", "foo"]);
    assert_eq!(
        read(fs.as_ref(), "/foo"),
        "enabled\ninterpreter /usr/bin/python3\nflags: \nextension .foo\n"
    );
    assert_eq!(
        fs.lstat(Path::new("/foo")).unwrap().mode,
        libc::S_IFREG | 0o644
    );
    assert_eq!(
        fs.lstat(Path::new("/register")).unwrap().mode,
        libc::S_IFREG | 0o200
    );
    let i = claim(&s, b"./a.foo", b"print(1)").expect("claimed");
    assert_eq!(i.path, PathBuf::from("/usr/bin/python3"));
    assert!(!i.preserve_argv0 && i.file.is_none());
    assert!(claim(&s, b"./a.bar", b"").is_none());
    // The same name again.
    assert_eq!(write(fs.as_ref(), "/register", line), Err(Errno::EEXIST));
    assert_eq!(
        write(fs.as_ref(), "/register", b":status:E::x::/bin/sh:"),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        write(fs.as_ref(), "/register", b":bad:Q::x::/bin/sh:"),
        Err(Errno::EINVAL)
    );
    assert_eq!(fs.lstat(Path::new("/bad")), Err(Errno::ENOENT));
}

#[test]
fn newest_entry_first() {
    let (s, fs) = mounted();
    write(fs.as_ref(), "/register", b":a:E::x::/bin/first:").unwrap();
    write(fs.as_ref(), "/register", b":b:M::#!::/bin/second:").unwrap();
    let i = claim(&s, b"s.x", b"#!/bin/sh\n").unwrap();
    assert_eq!(i.path, PathBuf::from("/bin/second"));
    assert_eq!(names(fs.as_ref())[4..], ["a", "b"]);
}

#[test]
fn enable_disable_remove() {
    let (s, fs) = mounted();
    write(fs.as_ref(), "/register", b":foo:E::foo::/bin/sh:P").unwrap();
    assert!(claim(&s, b"x.foo", b"").unwrap().preserve_argv0);
    assert_eq!(write(fs.as_ref(), "/foo", b"0\n"), Ok(2));
    assert!(read(fs.as_ref(), "/foo").starts_with("disabled\n"));
    assert!(claim(&s, b"x.foo", b"").is_none());
    write(fs.as_ref(), "/foo", b"1").unwrap();
    assert!(claim(&s, b"x.foo", b"").is_some());
    // status disables everything, without changing the entries.
    write(fs.as_ref(), "/status", b"0").unwrap();
    assert_eq!(read(fs.as_ref(), "/status"), "disabled\n");
    assert!(read(fs.as_ref(), "/foo").starts_with("enabled\n"));
    assert!(claim(&s, b"x.foo", b"").is_none());
    write(fs.as_ref(), "/status", b"1").unwrap();
    assert!(claim(&s, b"x.foo", b"").is_some());
    assert_eq!(write(fs.as_ref(), "/foo", b"2"), Err(Errno::EINVAL));
    assert_eq!(write(fs.as_ref(), "/foo", b""), Ok(0));
    write(fs.as_ref(), "/foo", b"-1").unwrap();
    assert_eq!(fs.lstat(Path::new("/foo")), Err(Errno::ENOENT));
    assert!(claim(&s, b"x.foo", b"").is_none());
    write(fs.as_ref(), "/register", b":a:E::a::/bin/sh:").unwrap();
    write(fs.as_ref(), "/register", b":b:E::b::/bin/sh:").unwrap();
    write(fs.as_ref(), "/status", b"-1\n").unwrap();
    assert_eq!(names(fs.as_ref()).len(), 4);
}

#[test]
fn fix_binary_opens_the_interpreter_at_registration() {
    let (s, fs) = mounted();
    assert_eq!(
        write(fs.as_ref(), "/register", b":f:E::f::/nonexistent/interp:F"),
        Err(Errno::ENOENT)
    );
    assert_eq!(fs.lstat(Path::new("/f")), Err(Errno::ENOENT));
    // Not a regular file.
    assert_eq!(
        write(fs.as_ref(), "/register", b":f:E::f::/usr/bin:F"),
        Err(Errno::EACCES)
    );
    write(fs.as_ref(), "/register", b":f:E::f::/bin/sh:F").unwrap();
    let i = claim(&s, b"a.f", b"").unwrap();
    assert!(i.file.is_some());
    assert_eq!(i.path, PathBuf::from("/bin/sh"));
    assert!(read(fs.as_ref(), "/f").contains("flags: F\n"));
}

#[test]
fn mounts_share_entries_and_the_last_umount_clears_them() {
    let (s, fs) = mounted();
    let fs2 = s.mount(&MountRequest::default(), Arc::new(RealFs)).unwrap();
    write(fs.as_ref(), "/register", b":a:E::a::/bin/sh:").unwrap();
    assert!(fs2.lstat(Path::new("/a")).is_ok());
    drop(fs);
    assert!(claim(&s, b"x.a", b"").is_some());
    drop(fs2);
    assert!(claim(&s, b"x.a", b"").is_none());
}

#[test]
fn files_refuse_what_the_kernel_refuses() {
    let (_s, fs) = mounted();
    assert_eq!(fs.lstat(Path::new("/nope")), Err(Errno::ENOENT));
    assert_eq!(fs.lstat(Path::new("/status/x")), Err(Errno::ENOENT));
    assert_eq!(
        fs.access(Path::new("/register"), libc::R_OK),
        Err(Errno::EACCES)
    );
    assert_eq!(fs.access(Path::new("/register"), libc::W_OK), Ok(()));
    assert_eq!(fs.mkdir(Path::new("/d"), 0o755), Err(Errno::EPERM));
    let h = handle(fs.as_ref(), "/register", libc::O_RDWR);
    assert_eq!(h.read(0, &mut [0; 8]), Err(Errno::EINVAL));
    assert!(matches!(
        fs.open(Path::new("/"), libc::O_WRONLY, 0),
        Err(Errno::EISDIR)
    ));
    assert_eq!(UmBinfmt::create("x").err(), Some(Errno::EINVAL));
    let s = UmBinfmt::new();
    assert!(s.handles_fstype("umbinfmt") && s.handles_fstype("binfmt_misc"));
    assert!(!s.handles_fstype("umbinfmtx"));
    assert!(s.interest().contains(Interest::EXEC));
}
