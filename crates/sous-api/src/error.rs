//! The one place a [`LambdaError`] becomes an HTTP response, as AWS sends it: the code's
//! status, `x-amzn-ErrorType: <Code>`, `x-amzn-RequestId`, and a JSON body with the message
//! member cased as botocore's model spells it for that code.

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use sous_types::LambdaError;

/// The HTTP response for `err`, answering the request `request_id`.
pub fn error_response(err: &LambdaError, request_id: &str) -> Response {
    let status =
        StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&err.body()).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(err.code.as_str()),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if status.is_server_error() {
        tracing::error!(code = err.code.as_str(), message = %err.message, request_id, "request failed");
    } else {
        tracing::debug!(code = err.code.as_str(), message = %err.message, request_id, "request refused");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use sous_types::ErrorCode;

    #[tokio::test]
    async fn renders_as_aws() {
        let resp = error_response(&LambdaError::function_not_found("arn:x"), "rid");
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.headers()["x-amzn-ErrorType"],
            "ResourceNotFoundException"
        );
        assert_eq!(resp.headers()["x-amzn-RequestId"], "rid");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Message"], "Function not found: arn:x");
        assert_eq!(v["Type"], "User");

        let resp = error_response(
            &LambdaError::new(ErrorCode::RequestEntityTooLargeException, "big"),
            "r",
        );
        assert_eq!(resp.status(), 413);
        assert_eq!(
            resp.headers()["x-amzn-ErrorType"],
            "RequestEntityTooLargeException"
        );
    }
}
