//! Key rotation's setting (the rotation function and `oauth-admin`).
use super::ConfigError;

/// `KEY_PUBLISH_DELAY_SECONDS` (rotation: the rotation function and `oauth-admin`): how long
/// new signing keys are published before they sign, 0 (replace a leaked key at once) to 7
/// days; default [`crate::keys::DEFAULT_PUBLISH_DELAY_SECONDS`].
///
/// # Errors
/// Not a whole number in range.
pub fn publish_delay(get: impl Fn(&str) -> Option<String>) -> Result<i64, ConfigError> {
    match get("KEY_PUBLISH_DELAY_SECONDS").filter(|v| !v.trim().is_empty()) {
        None => Ok(crate::keys::DEFAULT_PUBLISH_DELAY_SECONDS),
        Some(v) => {
            v.trim().parse::<i64>().ok().filter(|n| (0..=7 * 86_400).contains(n)).ok_or_else(|| ConfigError::Invalid {
                name: "KEY_PUBLISH_DELAY_SECONDS",
                reason: format!("{v:?} is not a whole number of seconds between 0 and 604800"),
            })
        }
    }
}
