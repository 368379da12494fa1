//! AWS-compatible service endpoints on the host (`sous serve --service-endpoint
//! SERVICE=URL`): where functions reach DynamoDB, S3 and the like, and where Sous itself
//! fetches code from S3.
//!
//! A service is named as the AWS SDKs name it in `AWS_ENDPOINT_URL_<SERVICE>` (lowercase
//! here: `dynamodb`, `s3`, `sqs`, ...); the URL is `http://` or `https://`, a host (an IP
//! address or a name) and a port, with no path, query or credentials.

use std::fmt;
use std::str::FromStr;

/// One `SERVICE=URL` of `--service-endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEndpoint {
    /// The service's SDK identifier, lowercase: `dynamodb`, `s3`.
    pub service: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host as written (an IP address, `[v6]`, or a name).
    pub host: String,
    pub port: u16,
}

impl ServiceEndpoint {
    /// `scheme://host:port`.
    pub fn url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// The name of the variable the AWS SDKs read for this service:
    /// `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3` (non-alphanumerics become `_`).
    pub fn env_var(&self) -> String {
        let id: String = self
            .service
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("AWS_ENDPOINT_URL_{id}")
    }
}

impl fmt::Display for ServiceEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.service, self.url())
    }
}

impl FromStr for ServiceEndpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (service, url) = s.split_once('=').ok_or_else(|| {
            format!("`{s}`: expected SERVICE=URL, e.g. dynamodb=http://127.0.0.1:8000")
        })?;
        let service = service.trim().to_ascii_lowercase();
        if service.is_empty()
            || !service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "`{s}`: the service must be an SDK service id such as dynamodb or s3"
            ));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{s}`: the URL must start with http:// or https://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "`{s}`: the URL must start with http:// or https://"
            ));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{s}`: the URL must be scheme://host:port, without a path, query or credentials"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{s}`: `{p}` is not a port"))?;
                (h.to_string(), port)
            }
            _ => (
                authority.to_string(),
                if scheme == "https" { 443 } else { 80 },
            ),
        };
        Ok(ServiceEndpoint {
            service,
            scheme,
            host,
            port,
        })
    }
}

/// The configured endpoints, at most one per service (the last one given wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEndpoints(Vec<ServiceEndpoint>);

impl ServiceEndpoints {
    pub fn new(endpoints: impl IntoIterator<Item = ServiceEndpoint>) -> Self {
        let mut all: Vec<ServiceEndpoint> = Vec::new();
        for e in endpoints {
            all.retain(|x| x.service != e.service);
            all.push(e);
        }
        ServiceEndpoints(all)
    }

    /// The endpoint of `service` (lowercase SDK id), if one is configured.
    pub fn get(&self, service: &str) -> Option<&ServiceEndpoint> {
        self.0.iter().find(|e| e.service == service)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ServiceEndpoint> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_and_url() {
        let e: ServiceEndpoint = "DynamoDB=http://127.0.0.1:8000/".parse().unwrap();
        assert_eq!(e.service, "dynamodb");
        assert_eq!(e.url(), "http://127.0.0.1:8000");
        assert_eq!(e.env_var(), "AWS_ENDPOINT_URL_DYNAMODB");
        let e: ServiceEndpoint = "s3=https://storage.local".parse().unwrap();
        assert_eq!((e.host.as_str(), e.port), ("storage.local", 443));
        let e: ServiceEndpoint = "s3=http://[::1]:9000".parse().unwrap();
        assert_eq!((e.host.as_str(), e.port), ("[::1]", 9000));
        let e: ServiceEndpoint = "secrets-manager=http://127.0.0.1:1".parse().unwrap();
        assert_eq!(e.env_var(), "AWS_ENDPOINT_URL_SECRETS_MANAGER");
    }

    #[test]
    fn refuses_what_is_not_service_equals_url() {
        for bad in [
            "dynamodb",
            "=http://127.0.0.1:1",
            "s3=ftp://127.0.0.1:1",
            "s3=http://127.0.0.1:1/path",
            "s3=http://user@127.0.0.1:1",
            "s3=http://127.0.0.1:0",
            "s3=http://127.0.0.1:x",
            "s 3=http://127.0.0.1:1",
        ] {
            assert!(bad.parse::<ServiceEndpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn last_endpoint_of_a_service_wins() {
        let all = ServiceEndpoints::new([
            "s3=http://127.0.0.1:1".parse().unwrap(),
            "dynamodb=http://127.0.0.1:2".parse().unwrap(),
            "s3=http://127.0.0.1:3".parse().unwrap(),
        ]);
        assert_eq!(all.get("s3").unwrap().port, 3);
        assert_eq!(all.iter().count(), 2);
    }
}
