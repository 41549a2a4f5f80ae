//! `cow` and `mincow`: TARGET as it is, every change kept in SOURCE.
//!
//! SOURCE is a layer over TARGET (see [`crate::whiteout`] for its format,
//! [`crate::cow_lookup`] for how a path is found): what the layer has
//! wins, a whiteout removes a TARGET name, an opaque directory replaces
//! TARGET's. TARGET is only read: a file about to change is first copied
//! into the layer ([`crate::copy_up`]), new names are made there, removed
//! names get a whiteout. Mounting the same SOURCE again later shows the
//! same changed tree.
//!
//! `mincow` changes TARGET in place wherever the user may (the operation
//! is tried on TARGET first), and falls back to the layer only for what
//! TARGET refuses (`EACCES`, `EPERM`, `EROFS`).
//!
//! Directories the layer has are served ([`ListedDir`]): their listings
//! are the union, and names looked up from them stay in the view.
//! TARGET's directories the layer has not touched (or holds empty, as
//! the layer's root before any change) are handed over as real fds: the kernel lists them exactly, and since their real paths are the
//! view's, names looked up from them come back through the view. Files
//! are handed over as real fds of the layer's or TARGET's file (TARGET's
//! only for reading). With `-o served`, TARGET's files and directories
//! are served too, so that no call on an fd (`fchmod` of a read-only fd)
//! can reach TARGET.
//!
//! What is not supported: renaming a directory that has TARGET contents
//! (`EXDEV`, as overlayfs without `redirect_dir`: `mv` copies instead),
//! `RENAME_EXCHANGE` unless both names are the layer's alone (`EINVAL`),
//! and names starting with `.wh.` (reserved, `EINVAL`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use viewos_core::{Errno, FileStat, FileSystem, FsStat, Opened, SetTime};

use crate::access::{check, Creds};
use crate::copy_up::{copy, ensure_dir, temp_in};
use crate::cow_file::CowFile;
use crate::cow_lookup::{Lookup, Node};
use crate::layer::{into_handle, name_of, parent_of, Entry, Layer};
use crate::listing::{union, ListedDir};
use crate::whiteout;

/// The file system of a `cow` or `mincow` mount.
pub struct CowFs {
    look: Arc<Lookup>,
    upper: Layer,
    lower: Layer,
    /// `mincow`: change TARGET in place where the user may.
    min: bool,
    /// Serve TARGET's files opened for reading instead of handing them over.
    served: bool,
    creds: Option<Creds>,
}

/// Drops what the lookups remember when a change is done (see
/// [`Lookup::invalidate`]).
struct Changing<'a>(&'a Lookup);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
    }
}

/// Errors that mean "not allowed here": `mincow` then uses the layer.
fn refused(e: Errno) -> bool {
    e == Errno::EACCES || e == Errno::EPERM || e == Errno::EROFS
}

fn writes(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

fn reserved(p: &Path) -> Result<(), Errno> {
    if whiteout::is_reserved(name_of(p)) {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// The listing of the directory `p`: the layer's entries (markers left
/// out), then TARGET's that are neither whited out nor the layer's.
fn listing(look: &Lookup, p: &Path) -> Result<Vec<Entry>, Errno> {
    let (upper, lower) = (look.upper(), look.lower());
    let node = look.find(p)?;
    let mut lists = Vec::new();
    let mut hidden: HashSet<Vec<u8>> = HashSet::new();
    if node.upper.is_some_and(|u| u.is_dir()) {
        let mut own = upper.list(p)?;
        own.retain(|e| {
            if !whiteout::is_reserved(&e.name) {
                return true;
            }
            if let Some(n) = whiteout::hidden_by(&e.name) {
                hidden.insert(n.to_vec());
            }
            false
        });
        lists.push(own);
    }
    if node.lower_listed() {
        let mut theirs = lower.list(p)?;
        theirs.retain(|e| e.is_dot() || !hidden.contains(&e.name));
        lists.push(theirs);
    }
    Ok(union(lists))
}

impl CowFs {
    /// The layer `upper` (SOURCE) over `lower` (TARGET); `min` for
    /// `mincow`. Checks are made for a user with `creds` (`None`: for the
    /// program making each call, [`Creds::caller`]).
    pub fn new(upper: Layer, lower: Layer, min: bool, creds: Option<Creds>) -> CowFs {
        CowFs {
            look: Arc::new(Lookup::new(upper.clone(), lower.clone())),
            upper,
            lower,
            min,
            served: false,
            creds,
        }
    }

    /// Serves TARGET's files opened for reading (`-o served`).
    pub fn serving_reads(mut self, served: bool) -> CowFs {
        self.served = served;
        self
    }

    /// Marks the start of a change: lookups forget what they learnt when
    /// the returned guard goes.
    fn changing(&self) -> Changing<'_> {
        Changing(&self.look)
    }

    fn node(&self, p: &Path) -> Result<Node, Errno> {
        self.look.find(p)
    }

    fn shown(&self, p: &Path) -> Result<(Node, FileStat), Errno> {
        let node = self.node(p)?;
        let st = node.stat().ok_or(Errno::ENOENT)?;
        Ok((node, st))
    }

    /// The layer holding what the view shows at `p`.
    fn holder(&self, node: &Node) -> &Layer {
        if node.upper.is_some() {
            &self.upper
        } else {
            &self.lower
        }
    }

    /// True if `mincow` may try a new name `p` in place: TARGET's
    /// directory shows through where it goes.
    fn in_place_parent(&self, p: &Path) -> Result<bool, Errno> {
        Ok(self.min && self.node(parent_of(p))?.lower_listed())
    }

    /// `op` tried in place on TARGET for the new name `p` (`mincow`):
    /// `None` if TARGET refused, so the layer must take it. A whiteout of
    /// the name goes, as the new name is TARGET's.
    fn try_in_place<T>(
        &self,
        p: &Path,
        op: impl FnOnce() -> Result<T, Errno>,
    ) -> Result<Option<T>, Errno> {
        match op() {
            Err(e) if refused(e) => Ok(None),
            Err(e) => Err(e),
            Ok(v) => {
                whiteout::remove(&self.upper, p)?;
                Ok(Some(v))
            }
        }
    }

    /// Makes sure the layer has what the view shows at `p`.
    fn copy_up(&self, p: &Path, node: &Node, with_data: bool) -> Result<(), Errno> {
        match (node.upper, node.lower) {
            (Some(_), _) => Ok(()),
            (None, Some(st)) => copy(&self.look, p, &st, with_data),
            (None, None) => Err(Errno::ENOENT),
        }
    }

    /// A change to what exists at `p`, made by `op` on the layer holding
    /// it (after a copy-up), or in place for `mincow` where allowed.
    fn change(
        &self,
        p: &Path,
        with_data: bool,
        op: impl Fn(&Layer) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let (node, _) = self.shown(p)?;
        if node.upper.is_none() && self.min {
            match op(&self.lower) {
                Err(e) if refused(e) => {}
                r => return r,
            }
        }
        self.copy_up(p, &node, with_data)?;
        op(&self.upper)
    }

    /// Makes the new name `p` with `make` (given a layer and the path in
    /// it): in TARGET for `mincow` where allowed, otherwise in the layer,
    /// over a whiteout if TARGET has the name (a directory made there is
    /// opaque: TARGET's old contents stay hidden).
    fn create<T>(
        &self,
        p: &Path,
        dir: bool,
        make: impl Fn(&Layer, &Path) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        reserved(p)?;
        if self.in_place_parent(p)? {
            if let Some(v) = self.try_in_place(p, || make(&self.lower, p))? {
                return Ok(v);
            }
        }
        let parent = parent_of(p);
        let _guard = ensure_dir(&self.look, parent)?;
        if self.lower.lstat_opt(p)?.is_none() {
            return make(&self.upper, p);
        }
        if dir {
            let tmp = temp_in(parent);
            let made = make(&self.upper, &tmp)?;
            let placed = whiteout::make_opaque(&self.upper, &tmp).and_then(|()| {
                self.upper
                    .fs()
                    .rename(&self.upper.at(&tmp), &self.upper.at(p), 0)
            });
            if let Err(e) = placed {
                let _ = self
                    .upper
                    .fs()
                    .unlink(&self.upper.at(&whiteout::opaque_of(&tmp)));
                let _ = self.upper.fs().rmdir(&self.upper.at(&tmp));
                return Err(e);
            }
            whiteout::remove(&self.upper, p)?;
            return Ok(made);
        }
        let made = make(&self.upper, p)?;
        whiteout::remove(&self.upper, p)?;
        Ok(made)
    }

    /// Removes the name `p` of the view (`dir`: a directory) from the
    /// layer and hides TARGET's.
    fn remove(&self, p: &Path, node: &Node, dir: bool) -> Result<(), Errno> {
        if node.upper.is_none() && self.min {
            let r = if dir {
                self.lower.fs().rmdir(&self.lower.at(p))
            } else {
                self.lower.fs().unlink(&self.lower.at(p))
            };
            match r {
                Err(e) if refused(e) => {}
                r => return r,
            }
        }
        let _guard = ensure_dir(&self.look, parent_of(p))?;
        if node.lower.is_some() {
            whiteout::add(&self.upper, p)?;
        }
        if node.upper.is_some() {
            if dir {
                self.clear_markers(p)?;
                self.upper.fs().rmdir(&self.upper.at(p))?;
            } else {
                self.upper.fs().unlink(&self.upper.at(p))?;
            }
        }
        Ok(())
    }

    /// Removes the markers inside the layer's directory `p`.
    fn clear_markers(&self, p: &Path) -> Result<(), Errno> {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        for e in self.upper.list(p)? {
            if whiteout::is_reserved(&e.name) {
                self.upper
                    .remove_if_there(&p.join(OsStr::from_bytes(&e.name)))?;
            }
        }
        Ok(())
    }

    fn is_empty_dir(&self, p: &Path) -> Result<bool, Errno> {
        Ok(listing(&self.look, p)?.iter().all(|e| e.is_dot()))
    }

    /// True if the layer's directory `p` holds nothing (no entry, no
    /// marker): TARGET's listing is then exactly the view's.
    fn layer_dir_is_empty(&self, p: &Path) -> Result<bool, Errno> {
        Ok(self.upper.list(p)?.iter().all(|e| e.is_dot()))
    }

    fn open_dir(&self, p: &Path) -> Result<Opened, Errno> {
        let (look, path) = (self.look.clone(), p.to_path_buf());
        let (look2, path2) = (self.look.clone(), p.to_path_buf());
        let dir = ListedDir::new(
            Box::new(move || listing(&look, &path)),
            Box::new(move || look2.find(&path2)?.stat().ok_or(Errno::ENOENT)),
        )?;
        Ok(Opened::Served(Box::new(dir)))
    }

    fn open_existing(
        &self,
        p: &Path,
        node: &Node,
        st: &FileStat,
        flags: i32,
        mode: u32,
    ) -> Result<Opened, Errno> {
        let layer_own = node.upper.is_some() && !(st.is_dir() && node.lower.is_some());
        if flags & libc::O_PATH != 0 && layer_own {
            // A handle on the layer's own object: programs change it through
            // /proc/self/fd/N (tar does for the directories it makes).
            return self.upper.fs().open(&self.upper.at(p), flags, mode);
        }
        if st.is_dir() {
            if writes(flags) || flags & libc::O_CREAT != 0 {
                return Err(Errno::EISDIR);
            }
            // TARGET's directory alone is listed exactly by the kernel, and
            // names looked up from it come back through the view (its real
            // path is the view's).
            let exact = node.lower_only() || (node.merged() && self.layer_dir_is_empty(p)?);
            if exact && !self.served && flags & libc::O_PATH == 0 {
                if let Some(o) = self.lower.open_in_place(p, flags)? {
                    return Ok(o);
                }
            }
            return self.open_dir(p);
        }
        if node.upper.is_some() {
            return self.upper.fs().open(&self.upper.at(p), flags, mode);
        }
        if !writes(flags) {
            let opened = self.lower.fs().open(&self.lower.at(p), flags, mode)?;
            // An O_PATH handle of TARGET's file is served: changes made
            // through /proc/self/fd/N must not reach TARGET.
            let path_handle = flags & libc::O_PATH != 0;
            if (self.served || path_handle) && !self.min {
                let h = into_handle(opened)?;
                let file = CowFile::new(h, self.look.clone(), p.to_path_buf());
                return Ok(Opened::Served(Box::new(file)));
            }
            return Ok(opened);
        }
        if self.min {
            match self.lower.fs().open(&self.lower.at(p), flags, mode) {
                Err(e) if refused(e) => {}
                r => return r,
            }
        }
        self.copy_up(p, node, flags & libc::O_TRUNC == 0)?;
        let flags = flags & !(libc::O_CREAT | libc::O_EXCL);
        self.upper.fs().open(&self.upper.at(p), flags, mode)
    }

    /// `rename` when nothing of TARGET moves: `from` is copied into the
    /// layer and renamed there, whiteouts added and removed around it.
    fn rename_in_layer(
        &self,
        from: &Path,
        to: &Path,
        src: &Node,
        sst: &FileStat,
        dst: &Node,
    ) -> Result<(), Errno> {
        self.copy_up(from, src, true)?;
        let _guard = ensure_dir(&self.look, parent_of(to))?;
        if let Some(d) = dst.upper {
            if d.is_dir() {
                self.clear_markers(to)?;
            }
        }
        if sst.is_dir() && self.lower.lstat_opt(to)?.is_some() {
            whiteout::make_opaque(&self.upper, from)?;
        }
        if src.lower.is_some() {
            whiteout::add(&self.upper, from)?;
        }
        self.upper
            .fs()
            .rename(&self.upper.at(from), &self.upper.at(to), 0)?;
        whiteout::remove(&self.upper, to)
    }
}

impl FileSystem for CowFs {
    fn open(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        let _changing = (writes(flags) || flags & libc::O_CREAT != 0).then(|| self.changing());
        let node = self.node(p)?;
        match node.stat() {
            Some(st) => {
                if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                self.open_existing(p, &node, &st, flags, mode)
            }
            None if flags & libc::O_CREAT != 0 => {
                self.create(p, false, |l, q| l.fs().open(&l.at(q), flags, mode))
            }
            None => Err(Errno::ENOENT),
        }
    }

    fn lstat(&self, p: &Path) -> Result<FileStat, Errno> {
        Ok(self.shown(p)?.1)
    }

    fn readlink(&self, p: &Path) -> Result<PathBuf, Errno> {
        let (node, _) = self.shown(p)?;
        let l = self.holder(&node);
        l.fs().readlink(&l.at(p))
    }

    fn access(&self, p: &Path, mode: i32) -> Result<(), Errno> {
        let (node, st) = self.shown(p)?;
        if node.upper.is_some() || mode & libc::W_OK == 0 {
            let l = self.holder(&node);
            return l.fs().access(&l.at(p), mode);
        }
        if self.min && self.lower.fs().access(&self.lower.at(p), mode).is_ok() {
            return Ok(());
        }
        // Writing copies the file: the user will own it.
        let creds = self.creds.clone().unwrap_or_else(Creds::caller);
        let own = FileStat {
            uid: creds.uid,
            gid: creds.gid,
            ..st
        };
        self.lower
            .fs()
            .access(&self.lower.at(p), mode & !libc::W_OK)?;
        check(&own, &creds, mode)
    }

    fn mkdir(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        let _changing = self.changing();
        if self.node(p)?.exists() {
            return Err(Errno::EEXIST);
        }
        self.create(p, true, |l, q| l.fs().mkdir(&l.at(q), mode))
    }

    fn rmdir(&self, p: &Path) -> Result<(), Errno> {
        let _changing = self.changing();
        if p == Path::new("/") {
            return Err(Errno::EBUSY);
        }
        let (node, st) = self.shown(p)?;
        if !st.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !self.is_empty_dir(p)? {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove(p, &node, true)
    }

    fn unlink(&self, p: &Path) -> Result<(), Errno> {
        let _changing = self.changing();
        let (node, st) = self.shown(p)?;
        if st.is_dir() {
            return Err(Errno::EISDIR);
        }
        self.remove(p, &node, false)
    }

    fn rename(&self, from: &Path, to: &Path, flags: u32) -> Result<(), Errno> {
        let _changing = self.changing();
        let (src, sst) = self.shown(from)?;
        let dst = self.node(to)?;
        if from == to {
            return Ok(());
        }
        reserved(to)?;
        if to.starts_with(from) {
            return Err(Errno::EINVAL);
        }
        if flags & libc::RENAME_EXCHANGE != 0 {
            if src.lower.is_some() || dst.lower.is_some() || dst.upper.is_none() {
                return Err(Errno::EINVAL);
            }
            let (a, b) = (self.upper.at(from), self.upper.at(to));
            return self.upper.fs().rename(&a, &b, flags);
        }
        if let Some(dst_st) = dst.stat() {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            match (sst.is_dir(), dst_st.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.is_empty_dir(to)? => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        if self.min
            && src.lower_only()
            && dst.upper.is_none()
            && self.in_place_parent(from)?
            && self.in_place_parent(to)?
        {
            let (a, b) = (self.lower.at(from), self.lower.at(to));
            if let Some(()) = self.try_in_place(to, || self.lower.fs().rename(&a, &b, flags))? {
                return Ok(());
            }
        }
        if sst.is_dir() && src.lower.is_some() {
            // TARGET's tree cannot move: programs copy instead.
            return Err(Errno::new(libc::EXDEV));
        }
        self.rename_in_layer(from, to, &src, &sst, &dst)
    }

    fn link(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        let _changing = self.changing();
        let (src, sst) = self.shown(from)?;
        if sst.is_dir() {
            return Err(Errno::EPERM);
        }
        if self.node(to)?.exists() {
            return Err(Errno::EEXIST);
        }
        reserved(to)?;
        if self.min && src.lower_only() && self.in_place_parent(to)? {
            let (a, b) = (self.lower.at(from), self.lower.at(to));
            if let Some(()) = self.try_in_place(to, || self.lower.fs().link(&a, &b))? {
                return Ok(());
            }
        }
        self.copy_up(from, &src, true)?;
        let _guard = ensure_dir(&self.look, parent_of(to))?;
        self.upper
            .fs()
            .link(&self.upper.at(from), &self.upper.at(to))?;
        whiteout::remove(&self.upper, to)
    }

    fn symlink(&self, target: &Path, p: &Path) -> Result<(), Errno> {
        let _changing = self.changing();
        if self.node(p)?.exists() {
            return Err(Errno::EEXIST);
        }
        self.create(p, false, |l, q| l.fs().symlink(target, &l.at(q)))
    }

    fn chmod(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        let _changing = self.changing();
        self.change(p, true, |l| l.fs().chmod(&l.at(p), mode))
    }

    fn chown(&self, p: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let _changing = self.changing();
        self.change(p, true, |l| l.fs().chown(&l.at(p), uid, gid))
    }

    fn utimens(&self, p: &Path, atime: SetTime, mtime: SetTime) -> Result<(), Errno> {
        let _changing = self.changing();
        self.change(p, true, |l| l.fs().utimens(&l.at(p), atime, mtime))
    }

    fn mknod(&self, p: &Path, mode: u32, rdev: u64) -> Result<(), Errno> {
        let _changing = self.changing();
        if self.node(p)?.exists() {
            return Err(Errno::EEXIST);
        }
        self.create(p, false, |l, q| l.fs().mknod(&l.at(q), mode, rdev))
    }

    fn getxattr(&self, p: &Path, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let (node, _) = self.shown(p)?;
        let l = self.holder(&node);
        l.fs().getxattr(&l.at(p), name)
    }

    fn setxattr(&self, p: &Path, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let _changing = self.changing();
        self.change(p, true, |l| l.fs().setxattr(&l.at(p), name, value, flags))
    }

    fn listxattr(&self, p: &Path) -> Result<Vec<u8>, Errno> {
        let (node, _) = self.shown(p)?;
        let l = self.holder(&node);
        l.fs().listxattr(&l.at(p))
    }

    fn removexattr(&self, p: &Path, name: &[u8]) -> Result<(), Errno> {
        let _changing = self.changing();
        self.change(p, true, |l| l.fs().removexattr(&l.at(p), name))
    }

    fn statfs(&self, _p: &Path) -> Result<FsStat, Errno> {
        self.upper.fs().statfs(self.upper.root())
    }

    fn truncate(&self, p: &Path, len: u64) -> Result<(), Errno> {
        let _changing = self.changing();
        self.change(p, len != 0, |l| l.fs().truncate(&l.at(p), len))
    }
}

#[cfg(test)]
mod tests;
