//! Password hashing: argon2id (PHC strings) for everything we write; gochat's unsalted
//! SHA-1 hex accepted on read only, so an imported gochat database keeps working until each
//! user's next login rehashes it.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use sha1::{Digest, Sha1};

/// argon2id with fixed cost parameters. Hashing is CPU-bound (~50 ms at the defaults):
/// callers run it on a blocking thread.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
}

/// The result of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password (or an unreadable hash).
    Wrong,
    /// Right password, hash is current.
    Ok,
    /// Right password, but the stored hash is legacy SHA-1: store this argon2id hash instead.
    Rehash(String),
}

/// Why a hash could not be made.
#[derive(Debug, thiserror::Error)]
#[error("argon2: {0}")]
pub struct HashError(String);

impl Passwords {
    /// argon2id with `memory_kib` KiB and `iterations` passes, one lane.
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, HashError> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| HashError(e.to_string()))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string for `password`, with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Check `password` against a stored hash (argon2 PHC or legacy SHA-1 hex).
    pub fn verify(&self, password: &str, stored: &str) -> Verdict {
        if is_legacy_sha1(stored) {
            let digest = Sha1::digest(password.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            if !constant_time_eq(hex.as_bytes(), stored.to_ascii_lowercase().as_bytes()) {
                return Verdict::Wrong;
            }
            return match self.hash(password) {
                Ok(h) => Verdict::Rehash(h),
                // Could not rehash now; the login still succeeds and we try next time.
                Err(_) => Verdict::Ok,
            };
        }
        // The verifier reads the cost parameters from the PHC string itself, so hashes made
        // with other parameters still verify.
        match self.argon2().verify_password(password.as_bytes(), stored) {
            Ok(()) => Verdict::Ok,
            Err(_) => Verdict::Wrong,
        }
    }
}

fn is_legacy_sha1(stored: &str) -> bool {
    stored.len() == 40 && stored.bytes().all(|b| b.is_ascii_hexdigit())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(1024, 1).unwrap()
    }

    #[test]
    fn argon2id_round_trip_with_unique_salts() {
        let p = cheap();
        let a = p.hash("111111").unwrap();
        let b = p.hash("111111").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert_eq!(p.verify("111111", &a), Verdict::Ok);
        assert_eq!(p.verify("111112", &a), Verdict::Wrong);
        assert_eq!(p.verify("111111", "garbage"), Verdict::Wrong);
    }

    #[test]
    fn legacy_sha1_verifies_once_and_asks_for_rehash() {
        let p = cheap();
        // sha1("111111"), as gochat stored it.
        let legacy = "3d4f2bf07dc1be38b20cd6e46949a1071f9d0e3d";
        match p.verify("111111", legacy) {
            Verdict::Rehash(h) => assert_eq!(p.verify("111111", &h), Verdict::Ok),
            v => panic!("expected a rehash, got {v:?}"),
        }
        assert_eq!(p.verify("nope", legacy), Verdict::Wrong);
    }

    #[test]
    fn hashes_made_with_other_costs_still_verify() {
        let strong = Passwords::new(2048, 2).unwrap();
        let h = strong.hash("pw").unwrap();
        assert_eq!(cheap().verify("pw", &h), Verdict::Ok);
    }
}
