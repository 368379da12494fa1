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

impl BodyError {
    /// The body did not arrive at the listener's minimum rate (`--body-min-rate`).
    pub fn is_too_slow(&self) -> bool {
        matches!(self, BodyError::Broken(cause) if sous_http::is_body_too_slow(cause))
    }
}

/// Read the whole body, refusing more than `limit` bytes: at once when Content-Length
/// declares more, or as soon as a chunked body has sent more. What the client still sends
/// is not waited for: the refusal is answered now, and the listener drains the rest while
/// it closes the connection (a lingering close, so the client reads the answer).
pub async fn read(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
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
