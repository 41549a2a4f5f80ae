use super::*;

fn ok(s: &[u8]) -> Registration {
    match parse_register(s) {
        Ok(r) => r,
        Err(e) => panic!("{:?} refused: {e:?}", String::from_utf8_lossy(s)),
    }
}

fn einval(s: &[u8]) {
    assert_eq!(
        parse_register(s),
        Err(Errno::EINVAL),
        "{:?} must be EINVAL",
        String::from_utf8_lossy(s)
    );
}

#[test]
fn extension_entries() {
    let r = ok(b":foo:E::foo::/usr/bin/python3:\n");
    assert_eq!(r.name, b"foo");
    assert_eq!(r.matcher, Matcher::Extension(b"foo".to_vec()));
    assert_eq!(r.interpreter, b"/usr/bin/python3");
    assert_eq!(r.flags, Flags::default());
    // Offset and mask are ignored for E, whatever they hold.
    let r = ok(b":foo:E:junk:foo:whatever:/bin/sh:");
    assert_eq!(r.matcher, Matcher::Extension(b"foo".to_vec()));
    // The extension keeps escapes as written.
    let r = ok(b":x:E::a\\x2e::/bin/sh:");
    assert_eq!(r.matcher, Matcher::Extension(b"a\\x2e".to_vec()));
}

#[test]
fn magic_entries() {
    let r = ok(b":qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01:\\xff\\xff\\xff\\xff\\xff\\xff\\xfe:/usr/bin/qemu-aarch64:F\n");
    let Matcher::Magic {
        offset,
        magic,
        mask,
    } = &r.matcher
    else {
        panic!("magic expected");
    };
    assert_eq!(*offset, 0);
    assert_eq!(magic, &b"\x7fELF\x02\x01\x00"); // stored masked
    assert_eq!(mask.as_deref(), Some(&b"\xff\xff\xff\xff\xff\xff\xfe"[..]));
    assert!(r.flags.fix_binary);
    let r = ok(b":m:M:2:ab::/bin/sh:");
    assert_eq!(
        r.matcher,
        Matcher::Magic {
            offset: 2,
            magic: b"ab".to_vec(),
            mask: None
        }
    );
    // An escaped delimiter is part of the magic.
    let r = ok(b":m:M::a\\x3ab::/bin/sh:");
    assert!(matches!(r.matcher, Matcher::Magic { ref magic, .. } if magic == b"a:b"));
    // One hex digit is enough for the unescape, but scanarg wants two.
    einval(b":m:M::\\x7::/bin/sh:");
    einval(b":m:M::\\xzz::/bin/sh:");
    // Other backslashes stay.
    let r = ok(b":m:M::\\n::/bin/sh:");
    assert!(matches!(r.matcher, Matcher::Magic { ref magic, .. } if magic == b"\\n"));
}

#[test]
fn any_delimiter() {
    let r = ok(b"|py|E||py||/usr/bin/python3|P");
    assert_eq!(r.name, b"py");
    assert!(r.flags.preserve_argv0);
    // With `,` as delimiter a `:` is an ordinary byte.
    let r = ok(b",n,M,,a:b,,/bin/sh,");
    assert!(matches!(r.matcher, Matcher::Magic { ref magic, .. } if magic == b"a:b"));
}

#[test]
fn flags() {
    let r = ok(b":f:E::x::/bin/sh:POCF");
    assert_eq!(
        r.flags,
        Flags {
            preserve_argv0: true,
            open_binary: true,
            credentials: true,
            fix_binary: true
        }
    );
    // C implies O.
    let r = ok(b":f:E::x::/bin/sh:C\n");
    assert!(r.flags.open_binary && r.flags.credentials);
    // Repeats are fine, unknown letters are not.
    ok(b":f:E::x::/bin/sh:PP");
    einval(b":f:E::x::/bin/sh:X");
    einval(b":f:E::x::/bin/sh:p");
    // Nothing after the flags but one newline.
    einval(b":f:E::x::/bin/sh:P\n\n");
    einval(b":f:E::x::/bin/sh:\nP");
    einval(b":f:E::x::/bin/sh::");
}

#[test]
fn bad_names() {
    einval(b"::E::foo::/bin/sh:");
    einval(b":.:E::foo::/bin/sh:");
    einval(b":..:E::foo::/bin/sh:");
    einval(b":a/b:E::foo::/bin/sh:");
    ok(b":...:E::foo::/bin/sh:");
}

#[test]
fn bad_types_and_fields() {
    einval(b":n:X::foo::/bin/sh:");
    einval(b":n:e::foo::/bin/sh:");
    einval(b":n:EE::foo::/bin/sh:");
    // Missing fields, missing last delimiter.
    einval(b":n:E::foo::/bin/sh");
    einval(b":n:E::foo:/bin/sh:");
    einval(b":n:E:");
    // Empty extension, magic or interpreter; `/` in an extension.
    einval(b":n:E::::/bin/sh:");
    einval(b":n:E::a/b::/bin/sh:");
    einval(b":n:M::::/bin/sh:");
    einval(b":n:E::foo:::");
    // A NUL in the string.
    einval(b":n:E::f\0o::/bin/sh:");
}

#[test]
fn offsets() {
    let off = |s: &[u8]| match ok(s).matcher {
        Matcher::Magic { offset, .. } => offset,
        Matcher::Extension(_) => panic!("magic expected"),
    };
    assert_eq!(off(b":n:M:+3:ab::/bin/sh:"), 3);
    assert_eq!(off(b":n:M:-0:ab::/bin/sh:"), 0);
    assert_eq!(off(b":n:M:254:ab::/bin/sh:"), 254);
    einval(b":n:M:-1:ab::/bin/sh:");
    einval(b":n:M:0x10:ab::/bin/sh:");
    einval(b":n:M:1 :ab::/bin/sh:");
    einval(b":n:M:99999999999:ab::/bin/sh:");
    // offset + size must fit in the 256-byte buffer.
    einval(b":n:M:255:ab::/bin/sh:");
}

#[test]
fn masks() {
    einval(b":n:M::ab:\\xff:/bin/sh:");
    einval(b":n:M::ab:\\xff\\xff\\xff:/bin/sh:");
    let r = ok(b":n:M::\\xff\\x0f:\\xf0\\xff:/bin/sh:");
    assert!(matches!(r.matcher, Matcher::Magic { ref magic, .. } if magic == b"\xf0\x0f"));
}

#[test]
fn lengths() {
    einval(b":a:E::b::c");
    ok(b":a:E::b::c:");
    let mut long = b":n:E::foo::/".to_vec();
    long.resize(MAX_REGISTER_LENGTH - 1, b'x');
    long.push(b':');
    ok(&long);
    long.insert(12, b'y');
    einval(&long);
}

#[test]
fn matching() {
    let ext = Matcher::Extension(b"foo".to_vec());
    assert!(ext.matches(b"./hello.foo", b""));
    assert!(ext.matches(b"/a.b/c.foo", b""));
    assert!(!ext.matches(b"hello.foo.bar", b""));
    assert!(!ext.matches(b"foo", b""));
    // The last dot anywhere, as the kernel's strrchr.
    assert!(ext.matches(b"/dir.foo", b""));
    assert!(!ext.matches(b"/x.foo/bar", b""));
    let m = ok(b":m:M:1:BC:\\xff\\xdf:/bin/sh:").matcher;
    assert!(m.matches(b"x", b"ABC"));
    assert!(m.matches(b"x", b"ABc"));
    assert!(!m.matches(b"x", b"BC"));
    // Past the head the kernel's buffer holds zeros.
    let z = ok(b":z:M:3:\\x00::/bin/sh:").matcher;
    assert!(z.matches(b"x", b"ab"));
    assert!(!z.matches(b"x", b"abcd"));
}

#[test]
fn commands() {
    assert_eq!(parse_command(b"0"), Ok(Command::Disable));
    assert_eq!(parse_command(b"1\n"), Ok(Command::Enable));
    assert_eq!(parse_command(b"-1\n"), Ok(Command::Remove));
    assert_eq!(parse_command(b""), Ok(Command::Nothing));
    for bad in [&b"\n"[..], b"2", b"-1\n\n", b"01", b"-10", b" 1"] {
        assert_eq!(parse_command(bad), Err(Errno::EINVAL), "{bad:?}");
    }
}

#[test]
fn status_texts() {
    let r = ok(b":foo:E::foo::/usr/bin/python3:");
    assert_eq!(
        r.status_text(true),
        b"enabled\ninterpreter /usr/bin/python3\nflags: \nextension .foo\n"
    );
    let r = ok(b":m:M:4:\\x7fELF:\\xff\\xff\\xff\\xdf:/bin/q:OCP");
    assert_eq!(
        String::from_utf8(r.status_text(false)).unwrap(),
        "disabled\ninterpreter /bin/q\nflags: POC\noffset 4\nmagic 7f454c46\nmask ffffffdf\n"
    );
    let r = ok(b":m:M::ab::/bin/q:");
    assert_eq!(
        String::from_utf8(r.status_text(true)).unwrap(),
        "enabled\ninterpreter /bin/q\nflags: \noffset 0\nmagic 6162\n"
    );
}
