//! Small cryptographic helpers: CSPRNG tokens, at-rest hashes, constant-time comparison,
//! secret wrappers and argon2id password hashing. No protocol rules live here.
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The random source failed (the operating system's entropy could not be read).
pub type RandomError = aws_lc_rs::error::Unspecified;

/// `n` bytes from a CSPRNG: AWS-LC's per-thread CTR-DRBG, seeded and reseeded from the
/// operating system (the generator the signatures already use), so an id costs no system
/// call.
///
/// # Errors
/// Fails only if the random source fails, which is treated as a server error.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf)?;
    Ok(buf)
}

/// Longest opaque token (authorization code, refresh token) looked up in a store: ours are
/// 43 characters (see [`random_token`]); anything longer is unknown without a read, and the
/// store keys stay bounded.
pub const MAX_OPAQUE_TOKEN_LEN: usize = 256;

/// A 256-bit CSPRNG value in URL-safe base64 without padding (43 characters).
///
/// # Errors
/// Fails only if the OS random source fails.
pub fn random_token() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A 128-bit CSPRNG identifier with a type prefix (`usr_…`, `cl_…`, `jti_…`).
///
/// # Errors
/// Fails only if the OS random source fails.
pub fn random_id(prefix: &str) -> Result<String, RandomError> {
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<16>()?)))
}

/// SHA-256 of a high-entropy secret, URL-safe base64: how codes, tokens and client
/// secrets are kept at rest. (They are 256-bit random values; a slow hash adds cost only.)
pub fn sha256_b64(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Raw SHA-256 digest (cache keys).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Constant-time equality of two byte strings. Unequal lengths return early, which only
/// reveals the length; every caller compares fixed-length hashes.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Errors of password hashing.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// argon2 refused the input or a stored hash is malformed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task was cancelled or panicked.
    #[error("password hashing task failed")]
    Task(#[from] tokio::task::JoinError),
    /// Every argon2 slot is busy and the queue for them is full: retry later (503).
    #[error("too many password checks in progress")]
    Busy,
}

/// Bounds concurrent argon2 runs (each needs ~19 MiB and a core for 15-60 ms): `slots` at a
/// time, up to `queue` more waiting; any caller beyond that is refused at once instead of
/// piling up threads and memory (a flood of logins against the local server).
pub struct Argon2Gate {
    slots: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
}

impl Argon2Gate {
    /// A gate with `slots` concurrent runs and `queue` waiting places.
    pub fn new(slots: usize, queue: usize) -> Self {
        Self { slots: tokio::sync::Semaphore::new(slots.max(1)), waiting: 0.into(), queue }
    }

    /// Run `work` on a blocking thread once a slot is free.
    ///
    /// # Errors
    /// [`PasswordError::Busy`] when the queue is full; the task's failure.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
        use std::sync::atomic::Ordering;
        let permit = match self.slots.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(PasswordError::Busy);
                }
                let p = self.slots.acquire().await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                p.map_err(|_| PasswordError::Busy)?
            }
        };
        let out = tokio::task::spawn_blocking(work).await?;
        drop(permit);
        Ok(out)
    }
}

/// The process's gate: one argon2 run per core, eight waiting per core.
fn argon2_gate() -> &'static Argon2Gate {
    static GATE: std::sync::OnceLock<Argon2Gate> = std::sync::OnceLock::new();
    GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Argon2Gate::new(cores, cores * 8)
    })
}

/// argon2id with the OWASP parameters (m=19456 KiB, t=2, p=1), which are the crate's defaults.
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Hash a password with argon2id and a fresh 16-byte salt, on a blocking thread so the
/// async runtime is never stalled (~25 ms of CPU). Returns the PHC string.
///
/// # Errors
/// Fails if argon2 rejects the input or the blocking task fails.
pub async fn hash_password(password: Secret) -> Result<String, PasswordError> {
    argon2_gate()
        .run(move || {
            argon2()
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
}

/// Whether a stored PHC string is weaker than the current policy (not argon2id, or
/// m < 19456 KiB, or t < 2) and should be re-hashed after a successful login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else { return true };
    if h.algorithm.as_str() != "argon2id" {
        return true;
    }
    let param = |name: &str| h.params.get_decimal(name).unwrap_or(0);
    param("m") < 19_456 || param("t") < 2
}

/// A valid argon2id hash of a random password: unknown usernames are verified against it
/// so they cost the same work as a wrong password.
pub const DUMMY_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0b7FzZ7S1Ko+Gz9m1mQ1a8bXxS4QJkXQ4m1b2Vd6x0c";

static ARGON2_VERIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many argon2 verifications this process has completed (real and dummy alike): a
/// cost metric, and how tests prove an unknown username still pays for one.
pub fn argon2_verifications() -> u64 {
    ARGON2_VERIFICATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Verify a password against a PHC string on a blocking thread. `None` as the hash runs
/// the same work against [`DUMMY_PASSWORD_HASH`] and returns `false`.
///
/// # Errors
/// Fails if the stored hash is malformed or the blocking task fails.
pub async fn verify_password(password: Secret, phc: Option<String>) -> Result<bool, PasswordError> {
    argon2_gate()
        .run(move || {
            let real = phc.is_some();
            let stored = phc.unwrap_or_else(|| DUMMY_PASSWORD_HASH.to_owned());
            let parsed = PasswordHash::new(&stored).map_err(|e| PasswordError::Hash(e.to_string()))?;
            let ok = argon2().verify_password(password.expose().as_bytes(), &parsed).is_ok();
            ARGON2_VERIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(ok && real)
        })
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One slot, one waiting place: a third caller is refused at once, and the waiting one
    /// runs when the slot frees.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_argon2_gate_queues_up_to_its_limit_and_refuses_beyond() -> Result<(), PasswordError> {
        let gate = std::sync::Arc::new(Argon2Gate::new(1, 1));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(move || hold.recv().is_ok()).await })
        };
        while gate.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(|| 2).await })
        };
        while gate.waiting.load(std::sync::atomic::Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(gate.run(|| 3).await, Err(PasswordError::Busy)), "the queue is full");
        let _ = release.send(());
        assert!(running.await?? && waiting.await?? == 2);
        assert_eq!(gate.run(|| 4).await?, 4, "free again");
        Ok(())
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
    }

    #[test]
    fn random_tokens_are_256_bit_url_safe_and_distinct() -> Result<(), Box<dyn std::error::Error>> {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let t = random_token()?;
            assert_eq!(t.len(), 43);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert!(seen.insert(t));
        }
        Ok(())
    }

    #[test]
    fn ct_eq_compares_exactly() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn sha256_matches_known_vector() {
        // SHA-256("abc") = ba7816bf…
        assert_eq!(sha256_b64("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }

    #[tokio::test]
    async fn argon2id_hash_uses_owasp_parameters_and_unique_salts() -> Result<(), PasswordError> {
        let a = hash_password(Secret::new("correct horse battery staple")).await?;
        let b = hash_password(Secret::new("correct horse battery staple")).await?;
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify_password(Secret::new("correct horse battery staple"), Some(a.clone())).await?);
        assert!(!verify_password(Secret::new("correct horse battery stapl"), Some(a)).await?);
        Ok(())
    }

    #[test]
    fn weak_or_foreign_hashes_need_a_rehash() {
        assert!(!needs_rehash(
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0b7FzZ7S1Ko+Gz9m1mQ1a8bXxS4QJkXQ4m1b2Vd6x0c"
        ));
        assert!(needs_rehash(
            "$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$0b7FzZ7S1Ko+Gz9m1mQ1a8bXxS4QJkXQ4m1b2Vd6x0c"
        ));
        assert!(needs_rehash(
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0b7FzZ7S1Ko+Gz9m1mQ1a8bXxS4QJkXQ4m1b2Vd6x0c"
        ));
        assert!(needs_rehash("not a hash"));
    }

    #[tokio::test]
    async fn dummy_hash_is_valid_and_never_matches() -> Result<(), PasswordError> {
        // Same algorithm, version and cost as a freshly stored hash, so the same work.
        let fresh = hash_password(Secret::new("any password at all")).await?;
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(params(DUMMY_PASSWORD_HASH), params(&fresh));
        assert!(!needs_rehash(DUMMY_PASSWORD_HASH));
        assert!(PasswordHash::new(DUMMY_PASSWORD_HASH).is_ok());
        assert!(!verify_password(Secret::new("anything"), None).await?);
        Ok(())
    }
}
