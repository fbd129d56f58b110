//! Durable file steps: an answer appears whole or not at all, and survives a power cut once
//! the request is gone.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes `bytes` as `dir/name`: first to a hidden temporary name in the same folder, synced,
/// then renamed over, then the folder synced, so that a reader never sees part of an answer.
///
/// # Errors
/// Any step of the file system's, with the file named.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut file = fs::File::create(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", temporary.display()))?;
    drop(file);
    fs::rename(&temporary, &target).with_context(|| format!("renaming to {}", target.display()))?;
    sync_dir(dir)
}

/// Makes the folder's entries (a rename, a removal) durable.
///
/// # Errors
/// Opening or syncing the folder.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the folder {}", dir.display()))
}

/// Moves `from` to `to` (same file system) and makes both folders' entries durable.
///
/// # Errors
/// The rename or a sync.
pub fn move_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::rename(from, to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    for dir in [from.parent(), to.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_leaves_the_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("onshi-bridge-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "a.xml", b"one").unwrap();
        write_atomically(&dir, "a.xml", b"two").unwrap();
        assert_eq!(fs::read(dir.join("a.xml")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.xml"]);
        fs::remove_dir_all(dir).unwrap();
    }
}
