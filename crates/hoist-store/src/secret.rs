//! Passwords (argon2id) and API token secrets (random, stored as SHA-256).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// The prefix of every token secret, so that a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "hoist_";

/// Hashes a password with argon2id and a random salt, as a PHC string (`$argon2id$v=19$…`).
///
/// # Errors
///
/// When the system's random source fails.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Crypto(format!("no random salt: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| StoreError::Crypto(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Crypto(format!("cannot hash the password: {e}")))
}

/// True when `password` matches the PHC string `hash` (compared in constant time by argon2).
#[must_use]
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new token secret: the prefix and 32 random bytes in hex.
///
/// # Errors
///
/// When the system's random source fails.
pub fn new_token_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Crypto(format!("no random token: {e}")))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

/// What the store keeps of a token secret: its SHA-256, in hex.
#[must_use]
pub fn token_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A hash to verify against when the user does not exist, so that a login attempt costs the
/// same whether the name is known or not.
pub(crate) fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no such user").unwrap_or_default())
}
