//! Users and groups of a view for `viewsu` and `viewsudo`: read from the
//! view's own `/etc/passwd` and `/etc/group` (so a view that mounts
//! other files there has other users), and the switch to one of them
//! with setgroups(2), setgid(2) and setuid(2), which the view answers
//! with its rules ([`crate::identity`]).

use std::ffi::OsString;

use viewos_core::Errno;

/// One `/etc/passwd` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell (`/bin/sh` when the entry has none).
    pub shell: String,
}

/// The entry of `who` (a name, or a number) in the passwd text `passwd`.
/// A number with no entry is a user of that uid and group, as `setpriv`
/// takes them.
pub fn find_user(passwd: &str, who: &str) -> Option<User> {
    let entries = passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        Some(User {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5].to_string(),
            shell: if f[6].is_empty() { "/bin/sh" } else { f[6] }.to_string(),
        })
    });
    let mut entries: Vec<User> = entries.collect();
    if let Some(i) = entries.iter().position(|u| u.name == who) {
        return Some(entries.swap_remove(i));
    }
    let uid: u32 = who.parse().ok()?;
    entries.into_iter().find(|u| u.uid == uid).or(Some(User {
        name: who.to_string(),
        uid,
        gid: uid,
        home: "/".into(),
        shell: "/bin/sh".into(),
    }))
}

/// The supplementary groups of `user` in the group text `group`: the
/// groups that list it, and its primary group.
pub fn groups_of(group: &str, user: &User) -> Vec<u32> {
    let mut out = vec![user.gid];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else {
            continue;
        };
        if f[3].split(',').any(|m| m == user.name) && !out.contains(&gid) {
            out.push(gid);
        }
    }
    out
}

/// Looks `who` up in the view's `/etc/passwd` and `/etc/group`.
pub fn lookup(who: &str) -> Result<(User, Vec<u32>), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let user = find_user(&passwd, who).ok_or_else(|| format!("user {who} does not exist"))?;
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let groups = groups_of(&group, &user);
    Ok((user, groups))
}

fn check(r: libc::c_int) -> Result<(), Errno> {
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::new(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EPERM),
        ))
    }
}

/// Becomes `user` with `groups`: groups first, then the group, then the
/// user (after which nothing else may change), as login programs do.
pub fn become_user(user: &User, groups: &[u32]) -> Result<(), Errno> {
    // SAFETY: setgroups reads `groups.len()` ids from our slice.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    // SAFETY: setgid and setuid take plain integers.
    check(unsafe { libc::setgid(user.gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::setuid(user.uid) })
}

/// Replaces the process with `argv` (searched on `PATH`), with the
/// environment of a login as `user`; returns only on failure.
pub fn exec_as(user: &User, argv: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let Some((prog, args)) = argv.split_first() else {
        return std::io::Error::from_raw_os_error(libc::EINVAL);
    };
    std::process::Command::new(prog)
        .args(args)
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("SHELL", &user.shell)
        .exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        ann:x:1000:1000::/home/ann:\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:ann,bob\nann:x:1000:\nwheel:x:10:bob\n";

    #[test]
    fn users_by_name_and_number() {
        let ann = find_user(PASSWD, "ann").unwrap();
        assert_eq!(
            (ann.uid, ann.gid, ann.shell.as_str()),
            (1000, 1000, "/bin/sh")
        );
        assert_eq!(find_user(PASSWD, "65534").unwrap().name, "nobody");
        assert_eq!(find_user(PASSWD, "4242").unwrap().uid, 4242);
        assert!(find_user(PASSWD, "bob").is_none());
        assert_eq!(groups_of(GROUP, &ann), vec![1000, 100]);
    }
}
