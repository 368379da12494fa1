//! The parts of an HTTP request that both payload formats are built from: the path and
//! query as received (after the gateway's addressing prefix), headers, body, and the
//! request's identity (id, time, caller address).

use sous_types::timefmt;
use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

/// One request at the front door, already read whole.
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path as received, after the addressing prefix (`/lambda-url/{id}`,
    /// `/execute-api/{apiId}`); always starts with `/`. Still percent-encoded.
    pub raw_path: &'a str,
    /// The query string as received, without `?` ("" when none).
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: &'static str,
    pub request_id: String,
    pub now: OffsetDateTime,
    /// `{id}.lambda-url.{region}.localhost` or `{apiId}.execute-api.{region}.localhost`.
    pub domain_name: String,
    pub domain_prefix: String,
}

impl HttpRequest<'_> {
    /// `28/Nov/2026:22:52:53 +0000`: the format of `requestContext.time`.
    pub fn time(&self) -> String {
        timefmt::request_time(self.now)
    }

    /// Milliseconds since the epoch (`requestContext.timeEpoch`).
    pub fn time_epoch(&self) -> i64 {
        (self.now.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// The path, percent-decoded (`requestContext.http.path`).
    pub fn path(&self) -> Cow<'_, str> {
        percent_decode_str(self.raw_path).decode_utf8_lossy()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn user_agent(&self) -> &str {
        self.header("user-agent").unwrap_or("")
    }

    /// The headers the front door adds, as AWS's does: `x-forwarded-for` (the caller's
    /// address, after any the request carried) and `x-forwarded-proto`.
    pub fn forwarded(&self) -> [(&'static str, String); 2] {
        let xff = match self.header("x-forwarded-for") {
            Some(prior) => format!("{prior}, {}", self.source_ip),
            None => self.source_ip.clone(),
        };
        [
            ("x-forwarded-for", xff),
            ("x-forwarded-proto", "http".to_string()),
        ]
    }

    /// The body as the event carries it: `(text, is_base64)`; `None` when empty.
    pub fn body(&self) -> Option<(Cow<'_, str>, bool)> {
        if self.body.is_empty() {
            return None;
        }
        let textual = self.header("content-type").is_none_or(is_text_type);
        match std::str::from_utf8(self.body) {
            Ok(s) if textual => Some((Cow::Borrowed(s), false)),
            _ => Some((
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(self.body)),
                true,
            )),
        }
    }

    /// The decoded query parameters, each with every value in order.
    pub fn query_multi(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for part in self.raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.entry(decode_query(k))
                .or_default()
                .push(decode_query(v));
        }
        out
    }
}

/// Content types whose bodies travel as text; everything else is base64-encoded.
pub fn is_text_type(content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || ct == "application/json"
        || ct == "application/javascript"
        || ct == "application/xml"
        || ct == "application/x-www-form-urlencoded"
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
}

fn decode_query(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn req<'a>(headers: &'a HeaderMap, body: &'a [u8], query: &'a str) -> HttpRequest<'a> {
        HttpRequest {
            method: "GET",
            raw_path: "/a%20b",
            raw_query: query,
            headers,
            body,
            source_ip: "127.0.0.1".into(),
            protocol: "HTTP/1.1",
            request_id: "id".into(),
            now: datetime!(2026-11-28 22:52:53.250 UTC),
            domain_name: "d".into(),
            domain_prefix: "p".into(),
        }
    }

    #[test]
    fn time_formats_like_aws() {
        let h = HeaderMap::new();
        let r = req(&h, b"", "");
        assert_eq!(r.time(), "28/Nov/2026:22:52:53 +0000");
        assert_eq!(r.time_epoch(), 1_795_906_373_250);
        assert_eq!(r.path(), "/a b");
    }

    #[test]
    fn binary_bodies_are_base64() {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/octet-stream".parse().unwrap());
        let r = req(&h, b"\x00\x01", "");
        assert_eq!(r.body(), Some((Cow::Borrowed("AAE="), true)));
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        let r = req(&h, b"{}", "");
        assert_eq!(r.body(), Some((Cow::Borrowed("{}"), false)));
    }

    #[test]
    fn query_values_are_decoded_and_grouped() {
        let h = HeaderMap::new();
        let r = req(&h, b"", "a=1&a=2&b=x%20y&c");
        let q = r.query_multi();
        assert_eq!(q["a"], vec!["1", "2"]);
        assert_eq!(q["b"], vec!["x y"]);
        assert_eq!(q["c"], vec![""]);
    }
}
