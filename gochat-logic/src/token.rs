//! Session tokens: 32 random bytes from the OS-seeded CSPRNG, base64url with padding
//! (44 characters), as PROTOCOL.md §1 specifies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use rand::RngCore;

/// A fresh, unguessable session token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_44_url_safe_chars_and_distinct() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 44);
        assert!(a.ends_with('='));
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_=".contains(&c))
        );
        assert_ne!(a, b);
    }
}
