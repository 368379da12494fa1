//! The XML error shape of AWS's query protocol (STS, IAM, ...), which botocore's rest-xml
//! parser reads too: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`.
//! Sous serves no query service; this answers requests for one.

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};

use super::set_request_id;

/// An error response: `status`, `code`, `message`.
pub fn error(status: u16, code: &str, message: &str, request_id: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(code),
        escape(message),
        escape(request_id)
    );
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    set_request_id(h, request_id);
    resp
}

/// Text as XML character data.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape("a<b & 'c'"), "a&lt;b &amp; &apos;c&apos;");
    }
}
