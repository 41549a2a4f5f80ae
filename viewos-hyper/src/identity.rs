//! The identities of a view's processes (`--root-id`, `-s`): the user and
//! group ids, supplementary groups and capabilities each process has in
//! the view, the kernel's rules for changing them, and the owners, types
//! and device numbers the view remembers for files it could not really
//! change.
//!
//! The host keeps one [`Ids`] per process (thread group), inherited on
//! fork and clone. Processes start as root with every capability. The
//! rules of set*id(2) and capset(2) are the kernel's, applied to these
//! ids: a process whose view identity is not root may only move between
//! its own real, effective and saved ids.
//!
//! Files: without privileges the host cannot chown or make device nodes,
//! so it remembers what the program asked for, keyed by device and inode
//! ([`FileOverride`]), and the stat family reports it. Files of the real
//! user show as owned by root (the view's user), as fakeroot shows them.

use std::collections::HashMap;

use parking_lot::Mutex;
use viewos_core::creds::Creds;
use viewos_core::Errno;

/// Which identity model the view follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityMode {
    /// `--root-id`: a fake root, as fakeroot or PRoot `-0` give.
    RootId,
    /// `-s/--secure`: human mode. The same fake root at start, and
    /// services enforce permissions for processes that gave it up.
    Human,
}

/// `CAP_SETGID`.
const CAP_SETGID: u32 = 6;
/// `CAP_SETUID`.
const CAP_SETUID: u32 = 7;

/// One process's ids in the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// Real, effective, saved and file-system user ids.
    pub uid: [u32; 4],
    /// Real, effective, saved and file-system group ids.
    pub gid: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capabilities (bit N is capability N).
    pub cap_effective: u64,
    /// Permitted capabilities.
    pub cap_permitted: u64,
    /// Inheritable capabilities.
    pub cap_inheritable: u64,
}

const REAL: usize = 0;
const EFFECTIVE: usize = 1;
const SAVED: usize = 2;
const FS: usize = 3;

/// Every capability the running kernel knows.
pub fn all_caps() -> u64 {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
        .min(63);
    if last == 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

impl Ids {
    /// Root with every capability: how processes start.
    pub fn root() -> Ids {
        let caps = all_caps();
        Ids {
            uid: [0; 4],
            gid: [0; 4],
            groups: Vec::new(),
            cap_effective: caps,
            cap_permitted: caps,
            cap_inheritable: 0,
        }
    }

    fn capable(&self, cap: u32) -> bool {
        self.cap_effective & (1 << cap) != 0
    }

    /// The credentials services check permissions for: the file-system
    /// ids and the supplementary groups.
    pub fn creds(&self) -> Creds {
        Creds {
            uid: self.uid[FS],
            gid: self.gid[FS],
            groups: self.groups.clone(),
        }
    }

    /// True if the effective uid is root.
    pub fn is_root(&self) -> bool {
        self.uid[EFFECTIVE] == 0
    }

    /// The capability changes the kernel makes when the uids change from
    /// `old` (capabilities(7), "Effect of user ID changes on
    /// capabilities"; no `SECBIT_KEEP_CAPS`).
    fn uid_changed(&mut self, old: [u32; 4]) {
        let had_root = old[REAL] == 0 || old[EFFECTIVE] == 0 || old[SAVED] == 0;
        let has_root = self.uid[REAL] == 0 || self.uid[EFFECTIVE] == 0 || self.uid[SAVED] == 0;
        if had_root && !has_root {
            self.cap_permitted = 0;
            self.cap_effective = 0;
        }
        if old[EFFECTIVE] == 0 && self.uid[EFFECTIVE] != 0 {
            self.cap_effective = 0;
        }
        if old[EFFECTIVE] != 0 && self.uid[EFFECTIVE] == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// What execve(2) does to the ids: a set-user-ID (set-group-ID)
    /// program makes its owner (group) the effective and saved id,
    /// otherwise the saved ids follow the effective ones; capabilities
    /// are root's full set where the real or effective uid is 0 (effective
    /// only with an effective uid of 0), none otherwise (programs have no
    /// file capabilities in a view).
    pub fn exec(&mut self, set_uid: Option<u32>, set_gid: Option<u32>) {
        self.exec_with_caps(set_uid, set_gid, None);
    }

    /// execve(2) of a file with set-ID owners `set_uid`/`set_gid` and
    /// file capabilities `file_caps` (`security.capability`): a process
    /// that is not root gets `(inheritable & file inheritable) | file
    /// permitted` as permitted set, effective too if the file says so.
    pub fn exec_with_caps(
        &mut self,
        set_uid: Option<u32>,
        set_gid: Option<u32>,
        file_caps: Option<FileCaps>,
    ) {
        if let Some(u) = set_uid {
            self.uid[EFFECTIVE] = u;
            self.uid[FS] = u;
        }
        if let Some(g) = set_gid {
            self.gid[EFFECTIVE] = g;
            self.gid[FS] = g;
        }
        self.uid[SAVED] = self.uid[EFFECTIVE];
        self.gid[SAVED] = self.gid[EFFECTIVE];
        let root = self.uid[REAL] == 0 || self.uid[EFFECTIVE] == 0;
        self.cap_permitted = if root { all_caps() } else { 0 };
        self.cap_effective = if self.uid[EFFECTIVE] == 0 {
            self.cap_permitted
        } else {
            0
        };
        if let (false, Some(f)) = (root, file_caps) {
            self.cap_permitted =
                ((self.cap_inheritable & f.inheritable) | f.permitted) & all_caps();
            self.cap_effective = if f.effective { self.cap_permitted } else { 0 };
        }
    }

    /// setuid(2).
    pub fn setuid(&mut self, u: u32) -> Result<(), Errno> {
        if u == u32::MAX {
            return Err(Errno::EINVAL);
        }
        let old = self.uid;
        if self.capable(CAP_SETUID) {
            self.uid = [u; 4];
        } else if u == old[REAL] || u == old[SAVED] {
            self.uid[EFFECTIVE] = u;
            self.uid[FS] = u;
        } else {
            return Err(Errno::EPERM);
        }
        self.uid_changed(old);
        Ok(())
    }

    /// setgid(2).
    pub fn setgid(&mut self, g: u32) -> Result<(), Errno> {
        if g == u32::MAX {
            return Err(Errno::EINVAL);
        }
        if self.capable(CAP_SETGID) {
            self.gid = [g; 4];
        } else if g == self.gid[REAL] || g == self.gid[SAVED] {
            self.gid[EFFECTIVE] = g;
            self.gid[FS] = g;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// setresuid(2) and setresgid(2) on `ids` (-1 leaves one as it is):
    /// without the capability each new id must be one of the current
    /// three.
    fn setres(ids: &mut [u32; 4], capable: bool, new: [u32; 3]) -> Result<(), Errno> {
        let current = [ids[REAL], ids[EFFECTIVE], ids[SAVED]];
        for &n in &new {
            if n != u32::MAX && !capable && !current.contains(&n) {
                return Err(Errno::EPERM);
            }
        }
        for (i, &n) in new.iter().enumerate() {
            if n != u32::MAX {
                ids[i] = n;
            }
        }
        ids[FS] = ids[EFFECTIVE];
        Ok(())
    }

    /// setresuid(2).
    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        let old = self.uid;
        let capable = self.capable(CAP_SETUID);
        Ids::setres(&mut self.uid, capable, [r, e, s])?;
        self.uid_changed(old);
        Ok(())
    }

    /// setresgid(2).
    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        let capable = self.capable(CAP_SETGID);
        Ids::setres(&mut self.gid, capable, [r, e, s])
    }

    /// setreuid(2) and setregid(2) on `ids`: the real id may become the
    /// real or effective one, the effective id any of the three; the saved
    /// id follows the new effective one when the real id is set or the
    /// effective one becomes other than the old real one.
    fn setre(ids: &mut [u32; 4], capable: bool, r: u32, e: u32) -> Result<(), Errno> {
        let old = *ids;
        if r != u32::MAX && !capable && r != old[REAL] && r != old[EFFECTIVE] {
            return Err(Errno::EPERM);
        }
        if e != u32::MAX && !capable && e != old[REAL] && e != old[EFFECTIVE] && e != old[SAVED] {
            return Err(Errno::EPERM);
        }
        if r != u32::MAX {
            ids[REAL] = r;
        }
        if e != u32::MAX {
            ids[EFFECTIVE] = e;
        }
        if r != u32::MAX || (e != u32::MAX && e != old[REAL]) {
            ids[SAVED] = ids[EFFECTIVE];
        }
        ids[FS] = ids[EFFECTIVE];
        Ok(())
    }

    /// setreuid(2).
    pub fn setreuid(&mut self, r: u32, e: u32) -> Result<(), Errno> {
        let old = self.uid;
        let capable = self.capable(CAP_SETUID);
        Ids::setre(&mut self.uid, capable, r, e)?;
        self.uid_changed(old);
        Ok(())
    }

    /// setregid(2).
    pub fn setregid(&mut self, r: u32, e: u32) -> Result<(), Errno> {
        let capable = self.capable(CAP_SETGID);
        Ids::setre(&mut self.gid, capable, r, e)
    }

    /// setfsuid(2): the old file-system uid; changed only where allowed.
    pub fn setfsuid(&mut self, u: u32) -> u32 {
        let old = self.uid[FS];
        if u != u32::MAX && (self.capable(CAP_SETUID) || self.uid.contains(&u)) {
            self.uid[FS] = u;
        }
        old
    }

    /// setfsgid(2): the old file-system gid; changed only where allowed.
    pub fn setfsgid(&mut self, g: u32) -> u32 {
        let old = self.gid[FS];
        if g != u32::MAX && (self.capable(CAP_SETGID) || self.gid.contains(&g)) {
            self.gid[FS] = g;
        }
        old
    }

    /// setgroups(2).
    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<(), Errno> {
        if !self.capable(CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        self.groups = groups;
        Ok(())
    }

    /// capset(2) of this process's sets: the new permitted set within the
    /// old one, the effective set within the new permitted one, the
    /// inheritable set within the old inheritable and permitted ones.
    pub fn capset(
        &mut self,
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<(), Errno> {
        let bounding = self.cap_inheritable | self.cap_permitted;
        if permitted & !self.cap_permitted != 0
            || effective & !permitted != 0
            || inheritable & !bounding != 0
        {
            return Err(Errno::EPERM);
        }
        self.cap_effective = effective;
        self.cap_permitted = permitted;
        self.cap_inheritable = inheritable;
        Ok(())
    }
}

/// What the view remembers of a file it could not really change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileOverride {
    /// The owner chown gave.
    pub uid: Option<u32>,
    /// The group chown gave.
    pub gid: Option<u32>,
    /// The file type mknod asked for (`S_IFCHR`, `S_IFBLK`) where the
    /// host made a regular placeholder file.
    pub file_type: Option<u32>,
    /// The device number mknod asked for.
    pub rdev: u64,
}

/// The identity state of a view.
pub struct Identities {
    mode: IdentityMode,
    /// The host's own uid and gid: files of this user show as root's.
    host_uid: u32,
    host_gid: u32,
    /// Per process (thread group id).
    procs: Mutex<HashMap<i32, Ids>>,
    /// Thread id to thread group id, for threads seen.
    tgids: Mutex<HashMap<i32, i32>>,
    /// Remembered files, by (device, inode).
    files: Mutex<HashMap<(u64, u64), FileOverride>>,
}

impl Identities {
    /// A view's identity state in `mode`.
    pub fn new(mode: IdentityMode) -> Identities {
        // SAFETY: geteuid and getegid have no preconditions.
        let (host_uid, host_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Identities {
            mode,
            host_uid,
            host_gid,
            procs: Mutex::new(HashMap::new()),
            tgids: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The mode.
    pub fn mode(&self) -> IdentityMode {
        self.mode
    }

    /// True if the host runs as real root (then chown and mknod are real).
    pub fn host_is_root(&self) -> bool {
        self.host_uid == 0
    }

    /// The thread group of thread `tid`.
    fn tgid(&self, tid: i32) -> i32 {
        if let Some(&t) = self.tgids.lock().get(&tid) {
            return t;
        }
        let t = crate::resolve::tgid_of(tid);
        self.tgids.lock().insert(tid, t);
        t
    }

    /// The ids of the process of thread `tid`. A process not seen yet
    /// (its fork event not handled yet) gets its parent's ids; one whose
    /// parent is not in the view starts as root.
    pub fn ids_of(&self, tid: i32) -> Ids {
        let tgid = self.tgid(tid);
        if let Some(ids) = self.procs.lock().get(&tgid) {
            return ids.clone();
        }
        let ppid: i32 = crate::resolve::status_field(tgid, "PPid:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let inherited = self.procs.lock().get(&ppid).cloned();
        let ids = inherited.unwrap_or_else(Ids::root);
        self.procs.lock().entry(tgid).or_insert(ids).clone()
    }

    /// Changes the ids of thread `tid`'s process with `f`.
    pub fn update<T>(&self, tid: i32, f: impl FnOnce(&mut Ids) -> T) -> T {
        let tgid = self.tgid(tid);
        let current = self.ids_of(tgid);
        let mut procs = self.procs.lock();
        let ids = procs.entry(tgid).or_insert(current);
        f(ids)
    }

    /// A new thread or process `child` of thread `parent`: a new process
    /// gets a copy of the parent's ids (a thread shares them).
    pub fn forked(&self, parent: i32, child: i32) {
        let ids = self.ids_of(parent);
        let child_tgid = self.tgid(child);
        self.procs.lock().entry(child_tgid).or_insert(ids);
    }

    /// Thread `tid` ended; a process ends with its leader.
    pub fn gone(&self, tid: i32) {
        self.tgids.lock().remove(&tid);
        self.procs.lock().remove(&tid);
    }

    /// The ids of process `pid` if it is one of the view's (seen before),
    /// without making an entry.
    pub fn known(&self, pid: i32) -> Option<Ids> {
        let tgid = *self.tgids.lock().get(&pid).unwrap_or(&pid);
        self.procs.lock().get(&tgid).cloned()
    }

    /// Process `pid` has just exec'd the program whose status is `st`
    /// (the real one; `nosuid`: its file system ignores set-ID bits).
    pub fn exec(&self, pid: i32, st: &libc::stat, nosuid: bool, file_caps: Option<FileCaps>) {
        let shown = self.present(
            st.st_dev,
            st.st_ino,
            Presented {
                uid: st.st_uid,
                gid: st.st_gid,
                mode: st.st_mode,
                rdev: st.st_rdev,
            },
        );
        let set_uid = (!nosuid && shown.mode & libc::S_ISUID != 0).then_some(shown.uid);
        let set_gid = (!nosuid && shown.mode & libc::S_ISGID != 0 && shown.mode & 0o010 != 0)
            .then_some(shown.gid);
        let file_caps = file_caps.filter(|_| !nosuid);
        self.update(pid, |ids| ids.exec_with_caps(set_uid, set_gid, file_caps));
    }

    /// Sets the ids of thread `tid`'s process outright (viewsudo).
    pub fn set(&self, tid: i32, ids: Ids) {
        let tgid = self.tgid(tid);
        self.procs.lock().insert(tgid, ids);
    }

    /// What the view remembers of file (`dev`, `ino`).
    pub fn file(&self, dev: u64, ino: u64) -> Option<FileOverride> {
        self.files.lock().get(&(dev, ino)).copied()
    }

    /// Changes what the view remembers of file (`dev`, `ino`).
    pub fn remember(&self, dev: u64, ino: u64, f: impl FnOnce(&mut FileOverride)) {
        f(self.files.lock().entry((dev, ino)).or_default())
    }

    /// True if the view remembers nothing of any file.
    pub fn no_files(&self) -> bool {
        self.files.lock().is_empty()
    }

    /// Forgets file (`dev`, `ino`) (its last name is gone).
    pub fn forget(&self, dev: u64, ino: u64) {
        self.files.lock().remove(&(dev, ino));
    }

    /// The owner, group, mode and device number a program sees for a file
    /// whose real ones are these: what the view remembers, else the real
    /// user's files as root's.
    pub fn present(&self, dev: u64, ino: u64, real: Presented) -> Presented {
        let remembered = self.file(dev, ino);
        let mut out = real;
        if out.uid == self.host_uid {
            out.uid = 0;
        }
        if out.gid == self.host_gid {
            out.gid = 0;
        }
        if let Some(f) = remembered {
            if let Some(u) = f.uid {
                out.uid = u;
            }
            if let Some(g) = f.gid {
                out.gid = g;
            }
            // A placeholder stands for a device only while it is still the
            // regular file the view made.
            if let Some(t) = f.file_type {
                if real.mode & libc::S_IFMT == libc::S_IFREG {
                    out.mode = t | (real.mode & 0o7777);
                    out.rdev = f.rdev;
                }
            }
        }
        out
    }
}

/// The status of the program file at `path` and whether its file system
/// is `nosuid`: what execve's set-ID rules look at ([`Identities::exec`]).
pub fn program_status(path: &std::path::Path) -> Option<(libc::stat, bool)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-integer structs the kernel fills, and our NUL-terminated
    // path.
    let (mut st, mut fs): (libc::stat, libc::statvfs) = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::stat(c.as_ptr(), &mut st) } < 0 {
        return None;
    }
    // SAFETY: as above.
    let nosuid =
        unsafe { libc::statvfs(c.as_ptr(), &mut fs) } == 0 && fs.f_flag & libc::ST_NOSUID != 0;
    Some((st, nosuid))
}

/// A file's capabilities (`security.capability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileCaps {
    /// The permitted set it gives.
    pub permitted: u64,
    /// The set it takes from the process's inheritable set.
    pub inheritable: u64,
    /// The effective bit: the permitted set becomes effective at exec.
    pub effective: bool,
}

/// `VFS_CAP_FLAGS_EFFECTIVE`.
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 1;

/// The capabilities of the file at `path` (following links), read from its
/// `security.capability` attribute (revisions 1 to 3); `None` without one.
pub fn file_caps(path: &std::path::Path) -> Option<FileCaps> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 24];
    // SAFETY: getxattr writes at most buf.len() bytes into our buffer; the
    // path and name are NUL-terminated.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    parse_file_caps(buf.get(..usize::try_from(n).ok()?)?)
}

/// Parses a `security.capability` value (`struct vfs_cap_data` or
/// `vfs_ns_cap_data`).
fn parse_file_caps(b: &[u8]) -> Option<FileCaps> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            b.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    let magic = word(0)?;
    let (permitted, inheritable) = match magic & 0xff00_0000 {
        // Revision 1: 32 bits.
        0x0100_0000 => (u64::from(word(1)?), u64::from(word(2)?)),
        // Revisions 2 and 3 (3 adds the namespace's root id): 64 bits.
        0x0200_0000 | 0x0300_0000 => (
            u64::from(word(1)?) | u64::from(word(3)?) << 32,
            u64::from(word(2)?) | u64::from(word(4)?) << 32,
        ),
        _ => return None,
    };
    Some(FileCaps {
        permitted,
        inheritable,
        effective: magic & VFS_CAP_FLAGS_EFFECTIVE != 0,
    })
}

/// A `/proc/PID/status` text with the `Uid:`, `Gid:`, `Groups:` and
/// capability lines of `ids`.
pub fn status_text(real: &str, ids: &Ids) -> String {
    let four = |v: [u32; 4]| format!("{}\t{}\t{}\t{}", v[0], v[1], v[2], v[3]);
    let mut out = String::with_capacity(real.len());
    for line in real.lines() {
        let (key, _) = line.split_once(':').unwrap_or((line, ""));
        let shown = match key {
            "Uid" => format!("Uid:\t{}", four(ids.uid)),
            "Gid" => format!("Gid:\t{}", four(ids.gid)),
            "Groups" => {
                let g: String = ids.groups.iter().map(|g| format!("{g} ")).collect();
                format!("Groups:\t{g}")
            }
            "CapInh" => format!("CapInh:\t{:016x}", ids.cap_inheritable),
            "CapPrm" => format!("CapPrm:\t{:016x}", ids.cap_permitted),
            "CapEff" => format!("CapEff:\t{:016x}", ids.cap_effective),
            _ => line.to_string(),
        };
        out.push_str(&shown);
        out.push('\n');
    }
    out
}

/// The identity fields of a file's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presented {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Type and permission bits.
    pub mode: u32,
    /// Device number of a device node.
    pub rdev: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(u: u32) -> Ids {
        let mut ids = Ids::root();
        ids.setresuid(u, u, u).unwrap();
        ids
    }

    #[test]
    fn root_becomes_a_user_for_good() {
        let mut ids = Ids::root();
        assert!(ids.cap_effective != 0);
        ids.setuid(1000).unwrap();
        assert_eq!(ids.uid, [1000; 4]);
        assert_eq!(ids.cap_permitted, 0);
        assert_eq!(ids.setuid(0), Err(Errno::EPERM));
        assert_eq!(ids.setuid(1001), Err(Errno::EPERM));
        assert_eq!(ids.setuid(1000), Ok(()));
        assert_eq!(ids.setgroups(vec![1]), Err(Errno::EPERM));
        assert_eq!(ids.setuid(u32::MAX), Err(Errno::EINVAL));
    }

    #[test]
    fn effective_root_can_come_back() {
        let mut ids = Ids::root();
        ids.setresuid(u32::MAX, 1000, u32::MAX).unwrap();
        assert_eq!(ids.uid, [0, 1000, 0, 1000]);
        assert_eq!(ids.cap_effective, 0);
        assert!(ids.cap_permitted != 0);
        ids.setuid(0).unwrap();
        assert_eq!(ids.uid[EFFECTIVE], 0);
        assert_eq!(ids.cap_effective, ids.cap_permitted);
    }

    #[test]
    fn file_capabilities_at_exec() {
        // cap_net_raw=ep (revision 2), as setcap writes it.
        let mut v = Vec::new();
        for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        let caps = parse_file_caps(&v).expect("parses");
        assert_eq!(
            caps,
            FileCaps {
                permitted: 1 << 13,
                inheritable: 0,
                effective: true
            }
        );
        assert_eq!(parse_file_caps(&v[..8]), None);
        assert_eq!(parse_file_caps(&[0; 20]), None);
        let mut ids = user(1000);
        ids.exec_with_caps(None, None, Some(caps));
        assert_eq!((ids.cap_permitted, ids.cap_effective), (1 << 13, 1 << 13));
        // Not effective: permitted only.
        ids.exec_with_caps(
            None,
            None,
            Some(FileCaps {
                effective: false,
                ..caps
            }),
        );
        assert_eq!((ids.cap_permitted, ids.cap_effective), (1 << 13, 0));
        // A program without capabilities drops them.
        ids.exec(None, None);
        assert_eq!((ids.cap_permitted, ids.cap_effective), (0, 0));
    }

    #[test]
    fn exec_of_set_user_id_programs() {
        let mut ids = user(1000);
        ids.exec(Some(0), None);
        assert_eq!(ids.uid, [1000, 0, 0, 0]);
        assert_eq!(ids.cap_effective, all_caps());
        // Back to the user for a while (seteuid): the saved root stays
        // until the next exec.
        ids.setresuid(u32::MAX, 1000, u32::MAX).unwrap();
        assert_eq!(ids.uid, [1000, 1000, 0, 1000]);
        assert_eq!(ids.cap_effective, 0);
        ids.exec(None, None);
        assert_eq!(ids.uid, [1000; 4]);
        assert_eq!(ids.cap_permitted, 0);
        assert_eq!(ids.setuid(0), Err(Errno::EPERM));
    }

    #[test]
    fn setreuid_and_fs_ids() {
        let mut ids = user(1000);
        assert_eq!(ids.setreuid(2000, u32::MAX), Err(Errno::EPERM));
        assert_eq!(ids.setfsuid(2000), 1000);
        assert_eq!(ids.uid[FS], 1000);
        let mut ids = Ids::root();
        ids.setreuid(5, 6).unwrap();
        assert_eq!(ids.uid, [5, 6, 6, 6]);
        assert_eq!(ids.setfsuid(5), 6);
        assert_eq!(ids.uid[FS], 5);
    }

    #[test]
    fn capset_only_drops() {
        let mut ids = Ids::root();
        let all = ids.cap_permitted;
        ids.capset(0, 1, 0).unwrap();
        assert_eq!(ids.capset(all, all, 0), Err(Errno::EPERM));
        assert_eq!(ids.capset(2, 1, 0), Err(Errno::EPERM));
    }

    #[test]
    fn status_lines() {
        let real = "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t1000 \nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n";
        let mut ids = user(7);
        ids.groups = vec![3, 4];
        let text = status_text(real, &ids);
        assert_eq!(
            text,
            "Name:\tsh\nUid:\t7\t7\t7\t7\nGid:\t0\t0\t0\t0\nGroups:\t3 4 \nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n"
        );
    }

    #[test]
    fn presented_owners() {
        let ids = Identities::new(IdentityMode::RootId);
        let real = Presented {
            uid: ids.host_uid,
            gid: ids.host_gid,
            mode: libc::S_IFREG | 0o644,
            rdev: 0,
        };
        let p = ids.present(1, 2, real);
        assert_eq!((p.uid, p.gid), (0, 0));
        ids.remember(1, 2, |f| {
            f.uid = Some(42);
            f.file_type = Some(libc::S_IFCHR);
            f.rdev = libc::makedev(1, 3);
        });
        let p = ids.present(1, 2, real);
        assert_eq!((p.uid, p.gid), (42, 0));
        assert_eq!(p.mode, libc::S_IFCHR | 0o644);
        // Not the placeholder any more (a directory on a reused inode).
        let dir = Presented {
            mode: libc::S_IFDIR | 0o755,
            ..real
        };
        assert_eq!(ids.present(1, 2, dir).mode, libc::S_IFDIR | 0o755);
    }
}
