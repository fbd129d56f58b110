//! Reading key files: refused when anyone but the owner (and group) may read them.
//!
//! A key file that every local account can read is a key every local account holds. The check is
//! on the file's own mode bits (the directory may still hide it, but onshi cannot know who may
//! enter a directory, so it does not count on that).
#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::Context;
use zeroize::Zeroizing;

/// The file's bytes, wiped on drop.
///
/// # Errors
/// An unreadable file, or one whose mode lets other users read it (`chmod 600` fixes that). The
/// message names the file and never its content.
pub fn read(path: &Path, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    refuse_world_readable(&metadata, path, what)?;
    Ok(Zeroizing::new(std::fs::read(path).with_context(|| {
        format!("reading the {what} {}", path.display())
    })?))
}

#[cfg(unix)]
fn refuse_world_readable(
    metadata: &std::fs::Metadata,
    path: &Path,
    what: &str,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode();
    anyhow::ensure!(
        mode & 0o007 == 0,
        "the {what} {} may be read or written by every user (mode {:o}); chmod 600 it",
        path.display(),
        mode & 0o777
    );
    Ok(())
}

#[cfg(not(unix))]
fn refuse_world_readable(_: &std::fs::Metadata, _: &Path, _: &str) -> anyhow::Result<()> {
    Ok(())
}

/// Writes a new secret file readable by its owner only (tests and set-up tools).
///
/// # Errors
/// The file exists or cannot be written.
pub fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_world_readable_key_file_is_refused_and_a_private_one_read() {
        let dir = std::env::temp_dir().join(format!("onshi-secret-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let _ = std::fs::remove_file(&path);
        write_new(&path, b"secret bytes").unwrap();
        assert_eq!(read(&path, "test key").unwrap().as_slice(), b"secret bytes");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = format!("{:#}", read(&path, "test key").unwrap_err());
        assert!(error.contains("chmod 600"), "{error}");
        assert!(!error.contains("secret bytes"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            read(&path, "test key").is_ok(),
            "group-readable is the operator's choice"
        );
        assert!(write_new(&path, b"again").is_err(), "never overwritten");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
