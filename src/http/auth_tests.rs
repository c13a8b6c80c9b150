use super::*;

const MIN: Duration = Duration::from_secs(60);

fn key(n: u8) -> CacheKey {
    AuthCache::key("prom", &[n])
}

#[test]
fn cache_hit_and_miss() {
    let t0 = Instant::now();
    let mut c = AuthCache::new(4, MIN);
    assert!(!c.hit(&key(1), t0), "empty cache must miss");
    c.insert(key(1), t0);
    assert!(c.hit(&key(1), t0 + Duration::from_secs(59)));
    assert!(!c.hit(&key(2), t0), "another password must miss");
    assert_ne!(
        AuthCache::key("a", b"b:c"),
        AuthCache::key("a:b", b"c"),
        "the user/password split must matter"
    );
}

#[test]
fn cache_entries_expire_and_are_dropped() {
    let t0 = Instant::now();
    let mut c = AuthCache::new(4, MIN);
    c.insert(key(1), t0);
    assert!(!c.hit(&key(1), t0 + MIN), "an entry is gone at its expiry");
    assert!(c.is_empty(), "an expired entry is removed when touched");
}

#[test]
fn cache_is_bounded_and_evicts_expired_then_oldest() {
    let t0 = Instant::now();
    let mut c = AuthCache::new(3, MIN);
    for i in 0..3u8 {
        c.insert(key(i), t0 + Duration::from_secs(u64::from(i)));
    }
    assert_eq!(c.len(), 3);
    // Full: the entry closest to expiry (key 0) goes.
    c.insert(key(9), t0 + Duration::from_secs(10));
    assert_eq!(c.len(), 3);
    let now = t0 + Duration::from_secs(10);
    assert!(!c.hit(&key(0), now));
    assert!(c.hit(&key(1), now) && c.hit(&key(2), now) && c.hit(&key(9), now));
    // Much later everything has expired: inserting sweeps all the stale entries at once.
    let later = t0 + Duration::from_secs(500);
    c.insert(key(7), later);
    assert_eq!(c.len(), 1);
    for i in 0..1000u16 {
        c.insert(AuthCache::key("flood", &i.to_be_bytes()), later);
    }
    assert_eq!(c.len(), 3, "never grows past its capacity");
}

#[test]
fn parses_basic_headers() {
    let h = |s: &str| HeaderValue::from_str(s).unwrap();
    // "prom:pa:ss" — the password may contain ':'.
    assert_eq!(
        parse_basic(&h("Basic cHJvbTpwYTpzcw==")),
        Some(("prom".to_string(), b"pa:ss".to_vec()))
    );
    assert_eq!(
        parse_basic(&h("basic cHJvbTpwYTpzcw==")).map(|p| p.0),
        Some("prom".to_string())
    );
    assert_eq!(parse_basic(&h("Bearer cHJvbTpwYTpzcw==")), None);
    assert_eq!(parse_basic(&h("Basic !!!")), None);
    assert_eq!(parse_basic(&h("Basic cHJvbQ==")), None, "no ':' at all");
}

fn header(user: &str, pass: &str) -> HeaderValue {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    HeaderValue::from_str(&format!("Basic {enc}")).unwrap()
}

#[tokio::test]
async fn checks_against_bcrypt_and_caches_only_successes() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let auth = BasicAuth::new(BTreeMap::from([("prom".to_string(), hash)]));
    assert!(!auth.check(None).await);
    assert!(!auth.check(Some(&header("prom", "wrong"))).await);
    assert!(
        !auth.check(Some(&header("nobody", "s3cret"))).await,
        "unknown user refused even with another user's password"
    );
    assert!(auth.cache.lock().unwrap().is_empty(), "failures not cached");
    assert!(auth.check(Some(&header("prom", "s3cret"))).await);
    assert_eq!(auth.cache.lock().unwrap().len(), 1);
    assert!(auth.check(Some(&header("prom", "s3cret"))).await);
    assert_eq!(auth.cache.lock().unwrap().len(), 1);
}

#[test]
fn challenge_names_the_realm() {
    let r = unauthorized();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()[header::WWW_AUTHENTICATE],
        format!("Basic realm=\"{REALM}\"")
    );
}
