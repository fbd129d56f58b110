//! Durable file steps: a file appears whole or not at all, and survives a power cut once
//! written.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// The error of a step, naming the file.
fn named<'a>(path: &'a Path, step: &str) -> impl FnOnce(io::Error) -> io::Error + 'a {
    let step = step.to_owned();
    move |e| io::Error::new(e.kind(), format!("{step} {}: {e}", path.display()))
}

/// Writes `bytes` to a hidden temporary name in `dir`, synced; returns its path.
fn write_temporary(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<std::path::PathBuf> {
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&temporary).map_err(named(&temporary, "creating"))?;
    file.write_all(bytes)
        .map_err(named(&temporary, "writing"))?;
    file.sync_all().map_err(named(&temporary, "syncing"))?;
    Ok(temporary)
}

/// Writes `bytes` as `dir/name`: first to a hidden temporary name in the same folder, synced,
/// then renamed over, then the folder synced, so that a reader never sees part of a file.
///
/// # Errors
/// Any step of the file system's, with the file named.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temporary = write_temporary(dir, name, bytes)?;
    let target = dir.join(name);
    fs::rename(&temporary, &target).map_err(named(&target, "renaming to"))?;
    sync_dir(dir)
}

/// As [`write_atomically`], but never replaces a file: the whole file appears under `name`
/// only if no file had that name (a hard link, which fails on an existing name, then the
/// temporary removed).
///
/// # Errors
/// [`io::ErrorKind::AlreadyExists`] when `dir/name` exists (nothing written); any other step's.
pub fn write_new_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temporary = write_temporary(dir, name, bytes)?;
    let target = dir.join(name);
    let linked = fs::hard_link(&temporary, &target);
    let removed = fs::remove_file(&temporary);
    linked?;
    removed.map_err(named(&temporary, "removing"))?;
    sync_dir(dir)
}

/// Makes the folder's entries (a rename, a removal) durable.
///
/// # Errors
/// Opening or syncing the folder.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(named(dir, "syncing the folder"))
}

/// Moves `from` to `to` (same file system) and makes both folders' entries durable.
///
/// # Errors
/// The rename or a sync.
pub fn move_durably(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to).map_err(named(from, "moving"))?;
    for dir in [from.parent(), to.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_atomic_write_leaves_the_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("oqs-xml-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "a.xml", b"one").unwrap();
        write_atomically(&dir, "a.xml", b"two").unwrap();
        assert_eq!(fs::read(dir.join("a.xml")).unwrap(), b"two");
        let refused = write_new_atomically(&dir, "a.xml", b"three").unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.join("a.xml")).unwrap(), b"two");
        write_new_atomically(&dir, "b.xml", b"four").unwrap();
        assert_eq!(fs::read(dir.join("b.xml")).unwrap(), b"four");
        assert_eq!(names(&dir), ["a.xml", "b.xml"]);
        fs::remove_dir_all(dir).unwrap();
    }
}
