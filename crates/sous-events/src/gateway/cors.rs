//! CORS for function URLs, as Lambda applies a URL's `Cors` configuration: the front door
//! answers preflight requests itself (the function is not invoked), and adds the
//! `Access-Control-*` headers to every response for an allowed origin, replacing any the
//! function set.

use http::{HeaderMap, HeaderName, HeaderValue};
use sous_types::function_url::Cors;

/// Whether a request is a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`).
pub fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
    method == http::Method::OPTIONS
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The headers of the preflight answer (200, empty body). Nothing for an origin or method
/// the configuration does not allow: the browser then refuses the request.
pub fn preflight_headers(cors: &Cors, headers: &HeaderMap) -> Vec<(HeaderName, String)> {
    let origin = header(headers, http::header::ORIGIN.as_str());
    let method = header(
        headers,
        http::header::ACCESS_CONTROL_REQUEST_METHOD.as_str(),
    );
    let Some(allow_origin) = cors.allowed_origin(origin) else {
        return Vec::new();
    };
    if !cors.allows_method(method) {
        return Vec::new();
    }
    let mut out = vec![(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin)];
    if let Some(methods) = cors.allow_methods.as_ref().filter(|m| !m.is_empty()) {
        out.push((
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            methods.join(","),
        ));
    }
    if let Some(h) = cors.allow_headers.as_ref().filter(|h| !h.is_empty()) {
        out.push((http::header::ACCESS_CONTROL_ALLOW_HEADERS, h.join(",")));
    }
    if let Some(h) = cors.expose_headers.as_ref().filter(|h| !h.is_empty()) {
        out.push((http::header::ACCESS_CONTROL_EXPOSE_HEADERS, h.join(",")));
    }
    if cors.allow_credentials == Some(true) {
        out.push((
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            "true".into(),
        ));
    }
    if let Some(age) = cors.max_age {
        out.push((http::header::ACCESS_CONTROL_MAX_AGE, age.to_string()));
    }
    out.push((http::header::VARY, "Origin".into()));
    out
}

/// Replace the function's `Access-Control-*` headers with the configuration's, for a
/// request from an allowed origin.
pub fn apply(cors: &Cors, request: &HeaderMap, response: &mut HeaderMap) {
    let stale: Vec<HeaderName> = response
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for k in stale {
        response.remove(k);
    }
    let Some(origin) = request
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let Some(allow_origin) = cors.allowed_origin(origin) else {
        return;
    };
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.insert(name, v);
        }
    };
    put(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, &allow_origin);
    if let Some(h) = cors.expose_headers.as_ref().filter(|h| !h.is_empty()) {
        put(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, &h.join(","));
    }
    if cors.allow_credentials == Some(true) {
        put(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
    }
    response.append(http::header::VARY, HeaderValue::from_static("Origin"));
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors {
            allow_origins: Some(vec!["https://app.example".into()]),
            allow_methods: Some(vec!["GET".into(), "POST".into()]),
            allow_headers: Some(vec!["x-custom".into()]),
            expose_headers: Some(vec!["x-out".into()]),
            max_age: Some(300),
            allow_credentials: Some(true),
        }
    }

    fn req(origin: &str, method: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("origin", origin.parse().unwrap());
        h.insert("access-control-request-method", method.parse().unwrap());
        h
    }

    #[test]
    fn preflight_for_an_allowed_origin() {
        let h = preflight_headers(&cors(), &req("https://app.example", "POST"));
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(
            get("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(get("access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(get("access-control-allow-headers"), Some("x-custom"));
        assert_eq!(get("access-control-max-age"), Some("300"));
        assert_eq!(get("access-control-allow-credentials"), Some("true"));
        assert!(preflight_headers(&cors(), &req("https://evil.example", "GET")).is_empty());
        assert!(preflight_headers(&cors(), &req("https://app.example", "DELETE")).is_empty());
    }

    #[test]
    fn responses_get_the_configured_headers_only() {
        let mut resp = HeaderMap::new();
        resp.insert("access-control-allow-origin", "*".parse().unwrap());
        apply(&cors(), &req("https://app.example", "GET"), &mut resp);
        assert_eq!(resp["access-control-allow-origin"], "https://app.example");
        assert_eq!(resp["access-control-expose-headers"], "x-out");
        let mut resp = HeaderMap::new();
        resp.insert("access-control-allow-origin", "*".parse().unwrap());
        apply(&cors(), &req("https://evil.example", "GET"), &mut resp);
        assert!(!resp.contains_key("access-control-allow-origin"));
    }
}
