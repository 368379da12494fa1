//! The admin key pair: from `SOUS_ACCESS_KEY_ID` / `SOUS_SECRET_ACCESS_KEY`, else from
//! `<data-dir>/credentials` (AWS credentials-file format, profile `sous`), generated on first
//! start. The secret is never printed or logged.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context};
use rand::Rng;
use sous_api::sigv4::Credentials;

pub const PROFILE: &str = "sous";

/// Where the key pair came from, for the start-up message.
pub enum Origin {
    Environment,
    File,
    Generated,
}

/// The key pair Sous signs its GetObject requests with when it fetches code from S3
/// (docs/SECURITY.md, "Code from S3"): `SOUS_S3_ACCESS_KEY_ID` / `SOUS_S3_SECRET_ACCESS_KEY`
/// when set (both or neither), else the admin key pair. `true` when it came from the
/// environment.
pub fn s3(admin: &Credentials) -> anyhow::Result<(Credentials, bool)> {
    let id = std::env::var("SOUS_S3_ACCESS_KEY_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("SOUS_S3_SECRET_ACCESS_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok((
            Credentials {
                access_key_id,
                secret_access_key,
            },
            true,
        )),
        (None, None) => Ok((admin.clone(), false)),
        _ => bail!("set both SOUS_S3_ACCESS_KEY_ID and SOUS_S3_SECRET_ACCESS_KEY, or neither"),
    }
}

pub fn load(data_dir: &Path) -> anyhow::Result<(Credentials, Origin)> {
    let id = std::env::var("SOUS_ACCESS_KEY_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("SOUS_SECRET_ACCESS_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            return Ok((
                Credentials {
                    access_key_id,
                    secret_access_key,
                },
                Origin::Environment,
            ))
        }
        (None, None) => {}
        _ => bail!("set both SOUS_ACCESS_KEY_ID and SOUS_SECRET_ACCESS_KEY, or neither"),
    }
    let path = data_dir.join("credentials");
    if path.exists() {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        return parse(&text).map(|c| (c, Origin::File)).with_context(|| {
            format!(
                "parse {}: no [{PROFILE}] profile with both keys",
                path.display()
            )
        });
    }
    let creds = generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    write!(
        file,
        "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        creds.access_key_id, creds.secret_access_key
    )
    .and_then(|_| file.sync_all())
    .with_context(|| format!("write {}", path.display()))?;
    Ok((creds, Origin::Generated))
}

fn parse(text: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = line == format!("[{PROFILE}]");
        } else if in_profile {
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = Some(v.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
    }
    Some(Credentials {
        access_key_id: id?,
        secret_access_key: secret?,
    })
}

fn generate() -> Credentials {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    let id: String = (0..16)
        .map(|_| UPPER[rng.random_range(0..UPPER.len())] as char)
        .collect();
    let secret: String = (0..40)
        .map(|_| SECRET[rng.random_range(0..SECRET.len())] as char)
        .collect();
    Credentials {
        access_key_id: format!("SOUS{id}"),
        secret_access_key: secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::env::remove_var("SOUS_ACCESS_KEY_ID");
        std::env::remove_var("SOUS_SECRET_ACCESS_KEY");
        let (a, _) = load(dir.path()).unwrap();
        let (b, origin) = load(dir.path()).unwrap();
        assert!(matches!(origin, Origin::File));
        assert_eq!(a.access_key_id, b.access_key_id);
        assert_eq!(a.secret_access_key, b.secret_access_key);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("credentials"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
