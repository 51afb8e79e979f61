//! Noticing that the configuration file changed, also when it is replaced by a symlink swap
//! (how Kubernetes updates a mounted ConfigMap: `..data` is re-pointed to a new directory).
//! Polled: the file's identity, size and time through every symlink, so a swap, a rename
//! over it and an in-place write all count, and a file missing for a moment (mid-swap) does
//! not. A new version is taken only once two looks in a row see it unchanged: a writer that
//! is not atomic (an editor, `cat > file`) is never read half-written.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    // `metadata` follows symlinks: a swapped `..data` link gives the new file's inode.
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

pub struct ConfigFile {
    path: PathBuf,
    seen: Option<Stamp>,
    /// A new version seen once, taken if the next look sees it unchanged.
    settling: Option<Stamp>,
}

impl ConfigFile {
    /// Watches `path` from its current version.
    pub fn new(path: &Path) -> ConfigFile {
        ConfigFile {
            path: path.to_path_buf(),
            seen: stamp(path),
            settling: None,
        }
    }

    /// Whether a version other than the last one taken is there now, and has been since the
    /// previous look (it is then taken).
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.path);
        if now.is_none() || now == self.seen {
            self.settling = None;
            return false;
        }
        if now == self.settling {
            self.seen = now;
            self.settling = None;
            return true;
        }
        self.settling = now;
        false
    }

    /// Takes the version there now as read (a reload by SIGHUP read it).
    pub fn taken(&mut self) {
        self.seen = stamp(&self.path).or(self.seen);
        self.settling = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_swap_an_overwrite_and_a_rename_are_changes_a_missing_file_is_not() {
        let dir = std::env::temp_dir().join(format!("scopegate-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("v1")).unwrap();
        std::fs::create_dir_all(dir.join("v2")).unwrap();
        std::fs::write(dir.join("v1/c.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.join("v2/c.yaml"), "a: 2\n").unwrap();
        // Kubernetes' layout: c.yaml -> ..data/c.yaml, ..data -> v1.
        std::os::unix::fs::symlink("v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/c.yaml", dir.join("c.yaml")).unwrap();
        let mut f = ConfigFile::new(&dir.join("c.yaml"));
        // A change is taken at the second look that sees it unchanged.
        let taken = |f: &mut ConfigFile| !f.changed() && f.changed();
        assert!(!f.changed(), "nothing happened yet");
        // The swap: a new link renamed over `..data`.
        std::os::unix::fs::symlink("v2", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        assert!(taken(&mut f), "symlink swap");
        assert!(!f.changed(), "seen once");
        // Written in place (a longer file, whatever the clock's resolution).
        std::fs::write(dir.join("v2/c.yaml"), "a: 22\n").unwrap();
        assert!(taken(&mut f), "overwrite");
        // Gone for a moment (mid-swap): not a change; back as another file: a change.
        std::fs::remove_file(dir.join("v2/c.yaml")).unwrap();
        assert!(!f.changed(), "missing");
        std::fs::write(dir.join("v2/c.yaml"), "a: 3\n").unwrap();
        assert!(taken(&mut f), "back");
        // Still being written at each look: never taken half-written.
        for i in 0..5 {
            std::fs::write(dir.join("v2/c.yaml"), "a: 4\n".repeat(i + 2)).unwrap();
            assert!(!f.changed(), "still changing at look {i}");
        }
        assert!(f.changed(), "taken once it stops changing");
        // Read by a SIGHUP: not a change to read again.
        std::fs::write(dir.join("v2/c.yaml"), "a: 5\n").unwrap();
        f.taken();
        assert!(!f.changed() && !f.changed());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
