//! Identifiers: random ones with a readable prefix, and bytes as hex.

use rand::Rng;

/// A random identifier with a readable prefix, e.g. `ten_5f0c...`.
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 10] = rand::rng().random();
    format!("{prefix}_{}", hex(&bytes))
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
