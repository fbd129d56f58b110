//! Where checkpoints go: somewhere the database's roles cannot rewrite.
//!
//! A [`Witness`] only ever gains entries. The default, [`DirWitness`], is a directory of files,
//! one per checkpoint, each made durable before it counts: written to a temporary name, fsynced,
//! linked to its final name (which fails rather than replace an existing file), and the directory
//! fsynced. Give the directory to another account or mount it from a host the database
//! administrators do not control (an append-only `chattr +a` directory, a WORM share). An object
//! store with a retention lock (S3 Object Lock in compliance mode, for one) fits the same trait:
//! `append` is a conditional put of a new key, `entries` a listing.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

/// An append-only store of named entries.
pub trait Witness: Send + Sync {
    /// Adds the entry, durably, or fails; never replaces an entry of the same name.
    ///
    /// # Errors
    /// The entry exists or could not be made durable.
    fn append(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()>;

    /// Every entry, in name order.
    ///
    /// # Errors
    /// The store cannot be read.
    fn entries(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>>;
}

/// A directory of checkpoint files.
pub struct DirWitness {
    dir: PathBuf,
}

/// The suffix of checkpoint files; anything else in the directory is ignored.
const SUFFIX: &str = ".checkpoint";

impl DirWitness {
    /// # Errors
    /// The directory does not exist and cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the witness directory {}", dir.display()))?;
        Ok(DirWitness { dir })
    }
}

impl Witness for DirWitness {
    fn append(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        anyhow::ensure!(
            !name.starts_with('.') && !name.contains('/') && !name.contains('\\'),
            "a witness entry name is a plain file name"
        );
        let final_path = self.dir.join(format!("{name}{SUFFIX}"));
        let temp = self.dir.join(format!(".{name}.tmp"));
        let written = (|| -> anyhow::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .with_context(|| format!("creating {}", temp.display()))?;
            file.write_all(bytes)?;
            file.sync_all()?;
            // A hard link, unlike a rename, fails when the name is taken: an entry is never
            // replaced, not even by a bug here.
            std::fs::hard_link(&temp, &final_path)
                .with_context(|| format!("adding {}", final_path.display()))?;
            Ok(())
        })();
        let _ = std::fs::remove_file(&temp);
        written?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing the witness directory {}", self.dir.display()))?;
        Ok(())
    }

    fn entries(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut entries = Vec::new();
        let listing = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading the witness directory {}", self.dir.display()))?;
        for entry in listing {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            if stem.starts_with('.') {
                continue;
            }
            let bytes = std::fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            entries.push((stem.to_owned(), bytes));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_added_never_replaced_and_listed_in_order() {
        let dir = std::env::temp_dir().join(format!("onshi-witness-{}", uuid::Uuid::new_v4()));
        let witness = DirWitness::open(&dir).unwrap();
        witness.append("b", b"second").unwrap();
        witness.append("a", b"first").unwrap();
        assert!(witness.append("a", b"replaced").is_err());
        assert!(witness.append("../escape", b"x").is_err());
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let entries = witness.entries().unwrap();
        assert_eq!(
            entries,
            vec![
                ("a".into(), b"first".to_vec()),
                ("b".into(), b"second".to_vec())
            ]
        );
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0, "no temporary file is left behind");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
