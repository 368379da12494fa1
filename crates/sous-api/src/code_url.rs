//! Presigned download URLs for code zips (GetFunction's `Code.Location`), in the spirit of an
//! S3 presigned URL: `/_sous/code/{sha256_hex}.zip?expires=EPOCH&signature=HEX`, where the
//! signature is HMAC-SHA256 of `"{sha256_hex}:{expires}"` keyed by the admin secret key. The
//! signature is the authentication: the route needs no SigV4, so any HTTP client can fetch it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a URL stays valid, as S3 presigned URLs Lambda hands out.
pub const VALIDITY_SECS: i64 = 600;
/// Path prefix of the download route.
pub const PREFIX: &str = "/_sous/code/";

fn mac(secret: &str, hex: &str, expires: i64) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(hex.as_bytes());
    mac.update(b":");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// The URL for the zip `hex`, valid until `now_epoch + VALIDITY_SECS`.
pub fn sign(public_url: &str, secret: &str, hex: &str, now_epoch: i64) -> String {
    let expires = now_epoch + VALIDITY_SECS;
    let signature = hex::encode(mac(secret, hex, expires).finalize().into_bytes());
    format!(
        "{}{PREFIX}{hex}.zip?expires={expires}&signature={signature}",
        public_url.trim_end_matches('/')
    )
}

/// Why a download was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Expired,
    BadSignature,
}

/// Check a download request: `file` is the last path segment, `raw_query` the query string.
/// Returns the blob's hex digest (64 lowercase hex characters, safe to use in a path).
pub fn verify<'a>(
    file: &'a str,
    raw_query: &str,
    secret: &str,
    now_epoch: i64,
) -> Result<&'a str, Refusal> {
    let hex = file.strip_suffix(".zip").ok_or(Refusal::Malformed)?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Refusal::Malformed);
    }
    let mut expires = None;
    let mut signature = None;
    for pair in raw_query.split('&') {
        match pair.split_once('=') {
            Some(("expires", v)) => expires = v.parse::<i64>().ok(),
            Some(("signature", v)) => signature = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err(Refusal::Malformed);
    };
    // Constant-time comparison.
    mac(secret, hex, expires)
        .verify_slice(&signature)
        .map_err(|_| Refusal::BadSignature)?;
    if now_epoch > expires {
        return Err(Refusal::Expired);
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn split(url: &str) -> (&str, &str) {
        let rest = url.split(PREFIX).nth(1).unwrap();
        rest.split_once('?').unwrap()
    }

    #[test]
    fn round_trip_and_refusals() {
        let url = sign("http://127.0.0.1:3001/", "secret", HEX, 1000);
        assert!(
            url.starts_with("http://127.0.0.1:3001/_sous/code/"),
            "{url}"
        );
        let (file, query) = split(&url);
        assert_eq!(verify(file, query, "secret", 1000), Ok(HEX));
        assert_eq!(
            verify(file, query, "secret", 1000 + VALIDITY_SECS + 1),
            Err(Refusal::Expired)
        );
        assert_eq!(
            verify(file, query, "other", 1000),
            Err(Refusal::BadSignature)
        );
        let forged = query.replace(
            &format!("expires={}", 1000 + VALIDITY_SECS),
            "expires=99999999",
        );
        assert_eq!(
            verify(file, &forged, "secret", 1000),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("../x.zip", query, "secret", 1000),
            Err(Refusal::Malformed)
        );
        assert_eq!(verify(file, "", "secret", 1000), Err(Refusal::Malformed));
    }
}
