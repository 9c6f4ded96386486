//! Scratch files for tests (the library compiles it only with `cfg(test)`; `tests/common`
//! includes the same source for the integration tests): a fresh directory under the
//! system temp dir, named by a tag, the process id and a counter so that no two tests share
//! one, and removed with everything in it when dropped (a failing test included).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh, empty directory, removed on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Makes `soakd-<tag>-<pid>-<n>` under the temp dir, emptied if it was left behind.
    pub fn new(tag: &str) -> ScratchDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "soakd-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory under the temp dir");
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` inside the directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, text).expect("a scratch file");
        path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One file with `text` in a directory of its own, removed on drop.
pub struct ScratchFile {
    path: PathBuf,
    _dir: ScratchDir,
}

impl ScratchFile {
    pub fn with(tag: &str, name: &str, text: &str) -> ScratchFile {
        let dir = ScratchDir::new(tag);
        ScratchFile {
            path: dir.write(name, text),
            _dir: dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
