//! Standard Webhooks signing (<https://www.standardwebhooks.com/>): the three headers of a
//! signed message. Pure: the timestamp is an argument (fresh per attempt, chosen by the caller).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The signing key: the base64 part after `whsec_`, or the raw bytes when there is no prefix
/// (or the part after the prefix is not base64).
pub fn key_bytes(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key_bytes(secret)).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The headers `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub fn headers(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature(secret, id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn reference_vector() {
        assert_eq!(
            signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn raw_keys_and_header_set() {
        assert_eq!(key_bytes("plain"), b"plain");
        let h = headers("plain", "id1", 5, b"{}");
        assert_eq!(h[0], ("webhook-id", "id1".to_string()));
        assert_eq!(h[1], ("webhook-timestamp", "5".to_string()));
        assert!(h[2].1.starts_with("v1,"));
        assert_ne!(
            signature("plain", "id1", 5, b"{}"),
            signature("plain", "id1", 6, b"{}")
        );
    }
}
