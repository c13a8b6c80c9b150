//! The gateway's authentication of ModelArts requests: `SDK-HMAC-SHA256` signatures (verified
//! with the client's own signer), IAM tokens and clock skew. Does not route or answer API calls.

// reason: the Err is the HTTP answer to send as is; boxing it buys nothing on this path.
#![allow(clippy::result_large_err)]

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use percent_encoding::percent_decode_str;

use super::faults::api_error;
use super::state::Shared;
use crate::cloud::sign;

const BAD_IAM: &str = "APIGW.0301";
const SIG_FAIL: &str = "Incorrect IAM authentication information: verify aksk signature fail";

/// Checks the credentials of a ModelArts request; `Err` is the 401 to send.
pub(crate) fn check(
    sim: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<(), Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(auth) = header("authorization") {
        let res = check_signature(sim, auth, method, uri, headers, body, request_id);
        if res.is_err() {
            sim.bump(|s| s.signature_failures += 1);
        }
        return res;
    }
    let res = match header("x-auth-token") {
        Some(token) => check_token(sim, token, request_id),
        None => Err(unauthorized(
            BAD_IAM,
            "Incorrect IAM authentication information: no Authorization or X-Auth-Token header",
            request_id,
        )),
    };
    if res.is_err() {
        sim.bump(|s| s.token_failures += 1);
    }
    res
}

fn unauthorized(code: &str, msg: &str, request_id: &str) -> Response {
    api_error(StatusCode::UNAUTHORIZED, code, msg, request_id)
}

fn check_token(sim: &Shared, token: &str, request_id: &str) -> Result<(), Response> {
    let expires = sim.tokens.lock().expect("tokens lock").get(token).copied();
    match expires {
        None => Err(unauthorized(
            BAD_IAM,
            "Incorrect IAM authentication information: decrypt token fail",
            request_id,
        )),
        Some(exp) if exp <= sim.now() => Err(unauthorized(
            "APIGW.0307",
            "The token must be updated.",
            request_id,
        )),
        Some(_) => Ok(()),
    }
}

fn check_signature(
    sim: &Shared,
    auth: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<(), Response> {
    let fail = || unauthorized(BAD_IAM, SIG_FAIL, request_id);
    let parsed = sign::parse_authorization(auth).ok_or_else(fail)?;
    if parsed.access_key != sim.cfg.access_key {
        return Err(fail());
    }
    check_date(sim, headers, request_id)?;
    let mut signed = Vec::with_capacity(parsed.signed_headers.len());
    for name in &parsed.signed_headers {
        let value = headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or_else(fail)?;
        signed.push((name.clone(), value.to_string()));
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let path = decode_path(uri.path());
    let query = decode_query(uri.query().unwrap_or_default());
    let req = sign::Request {
        method: method.as_str(),
        host,
        path: &path,
        query: &query,
        headers: &signed,
        body,
    };
    let expected = sign::sign(&req, &sim.cfg.access_key, &sim.cfg.secret_key);
    // The signed header list must be exactly what the signer would derive from those headers.
    let names_match = expected.signed_headers == parsed.signed_headers.join(";");
    if names_match && expected.signature == parsed.signature {
        Ok(())
    } else {
        Err(fail())
    }
}

/// `X-Sdk-Date` must be present and within the allowed skew of the server clock.
fn check_date(sim: &Shared, headers: &HeaderMap, request_id: &str) -> Result<(), Response> {
    let raw = headers.get(sign::DATE_HEADER).and_then(|v| v.to_str().ok());
    let Some(date) = raw.and_then(sign::parse_sdk_date) else {
        return Err(unauthorized(
            "APIGW.0303",
            "Incorrect app authentication information: X-Sdk-Date is missing or not YYYYMMDDTHHMMSSZ",
            request_id,
        ));
    };
    let now = sim.now();
    let skew = match date.duration_since(now) {
        Ok(ahead) => ahead,
        Err(e) => e.duration(),
    };
    if skew > sim.cfg.max_skew {
        let msg = format!(
            "Incorrect app authentication information: X-Sdk-Date {} is {} s away from the server time {}, more than the {} s allowed; check the client clock",
            raw.unwrap_or_default(),
            skew.as_secs(),
            sign::sdk_date(now),
            sim.cfg.max_skew.as_secs()
        );
        return Err(unauthorized("APIGW.0303", &msg, request_id));
    }
    Ok(())
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The unencoded path the client signed (it sends each segment percent-encoded).
fn decode_path(path: &str) -> String {
    path.split('/').map(decode).collect::<Vec<_>>().join("/")
}

/// The unencoded query pairs the client signed.
fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_path_decode_what_the_signer_encodes() {
        let q = vec![("name".to_string(), "a b~c/d".to_string())];
        let uri = sign::request_uri("/v1/p/images", &q);
        let (path, query) = uri.split_once('?').unwrap();
        assert_eq!(decode_path(path), "/v1/p/images");
        assert_eq!(decode_query(query), q);
    }
}
