//! The one request-body reader of the API address: every service reads its body here,
//! within its own size limit, and parses JSON bodies here. Each service maps a
//! [`BodyError`] or a JSON error to its own error shape (the body errors are the caller's:
//! an oversized body or a broken upload).

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the service's limit (declared in Content-Length, or counted).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection failed while the body was being received.
    #[error("receive the request body")]
    Broken(#[source] axum::Error),
}

/// Read the whole body, refusing more than `limit` bytes (up front when Content-Length says
/// so).
pub async fn read(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        discard(body).await;
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                discard(body).await;
                return Err(BodyError::TooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Read and drop what is left of an oversized body (up to a bound), so a client that is
/// still uploading receives the refusal instead of a reset connection.
async fn discard(mut body: Body) {
    const DISCARD_MAX: usize = 256 * 1024 * 1024;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > DISCARD_MAX {
                break;
            }
        }
    }
}

/// A JSON request body as `T`; an empty (or all-whitespace) body is `T::default()`, as the
/// AWS SDKs send no body for an input without members.
pub fn json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    struct In {
        a: Option<u8>,
    }

    #[tokio::test]
    async fn limits_and_blank_bodies() {
        let mut h = HeaderMap::new();
        let ok = read(Body::from("12345"), &h, 5).await.unwrap();
        assert_eq!(&ok[..], b"12345");
        assert!(matches!(
            read(Body::from("123456"), &h, 5).await,
            Err(BodyError::TooLarge { limit: 5 })
        ));
        h.insert(header::CONTENT_LENGTH, "100".parse().unwrap());
        assert!(matches!(
            read(Body::from("1"), &h, 5).await,
            Err(BodyError::TooLarge { .. })
        ));
        assert_eq!(json::<In>(b" \n").unwrap(), In::default());
        assert_eq!(json::<In>(br#"{"a":1}"#).unwrap(), In { a: Some(1) });
        assert!(json::<In>(b"{").is_err());
    }
}
