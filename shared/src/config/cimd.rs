//! Client ID Metadata Documents: how this server fetches them (docs/API.md, "Client ID
//! Metadata Documents").
use super::{ConfigError, int_var};
use std::path::PathBuf;

/// The CIMD settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdSettings {
    /// `CIMD_ENABLED` (default `true`): an https `client_id` is a metadata document's URL.
    pub enabled: bool,
    /// `CIMD_ALLOWED_HOSTS` (comma or space separated host names; default any host): only
    /// documents on these hosts are fetched.
    pub allowed_hosts: Option<Vec<String>>,
    /// A document is kept at least this long (`CIMD_CACHE_MIN_SECONDS`, default 300).
    pub cache_min: i64,
    /// ... and at most this long, whatever its `Cache-Control` says (`CIMD_CACHE_MAX_SECONDS`,
    /// default 86400).
    pub cache_max: i64,
    /// The whole fetch, connection included, must end within this (`CIMD_FETCH_TIMEOUT_MS`,
    /// default 3000).
    pub timeout_ms: u64,
    /// Tests only (`CIMD_TEST_LOOPBACK_CA_FILE`): documents may be fetched from loopback
    /// addresses, with this extra trusted CA. Refused unless the issuer is on loopback.
    pub test_loopback_ca: Option<PathBuf>,
}

impl Default for CimdSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_hosts: None,
            cache_min: 300,
            cache_max: 86_400,
            timeout_ms: 3000,
            test_loopback_ca: None,
        }
    }
}

impl CimdSettings {
    /// Read the settings; `issuer_on_loopback` says whether the test switch may be used.
    ///
    /// # Errors
    /// A value out of range, min above max, or the test switch on a public issuer.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>, issuer_on_loopback: bool) -> Result<Self, ConfigError> {
        let d = Self::default();
        let enabled = super::bool_var(get, "CIMD_ENABLED", true)?;
        let allowed_hosts = match get("CIMD_ALLOWED_HOSTS") {
            None => None,
            Some(v) => {
                let hosts: Vec<String> =
                    v.split([',', ' ']).filter(|h| !h.is_empty()).map(str::to_ascii_lowercase).collect();
                let bad = hosts.iter().find(|h| !h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)));
                if let Some(h) = bad.or(hosts.is_empty().then_some(&v)) {
                    return Err(ConfigError::Invalid {
                        name: "CIMD_ALLOWED_HOSTS",
                        reason: format!("{h:?} is not a list of host names"),
                    });
                }
                Some(hosts)
            }
        };
        let cache_min = int_var(get, "CIMD_CACHE_MIN_SECONDS", d.cache_min, 0, 86_400)?;
        let cache_max = int_var(get, "CIMD_CACHE_MAX_SECONDS", d.cache_max, 0, 7 * 86_400)?;
        if cache_min > cache_max {
            return Err(ConfigError::Invalid {
                name: "CIMD_CACHE_MIN_SECONDS",
                reason: "must not exceed CIMD_CACHE_MAX_SECONDS".into(),
            });
        }
        let timeout_ms = int_var(get, "CIMD_FETCH_TIMEOUT_MS", d.timeout_ms, 100, 10_000)?;
        let test_loopback_ca = get("CIMD_TEST_LOOPBACK_CA_FILE").map(PathBuf::from);
        if let Some(path) = &test_loopback_ca {
            if !issuer_on_loopback {
                return Err(ConfigError::Invalid {
                    name: "CIMD_TEST_LOOPBACK_CA_FILE",
                    reason: "is for tests only: it needs an issuer on loopback".into(),
                });
            }
            if std::fs::metadata(path).is_err() {
                return Err(ConfigError::Invalid {
                    name: "CIMD_TEST_LOOPBACK_CA_FILE",
                    reason: format!("{} cannot be read", path.display()),
                });
            }
        }
        Ok(Self { enabled, allowed_hosts, cache_min, cache_max, timeout_ms, test_loopback_ca })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)], loopback: bool) -> Result<CimdSettings, String> {
        CimdSettings::from_lookup(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()), loopback)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_bounds_and_the_test_switch_only_on_a_loopback_issuer() {
        assert_eq!(read(&[], false), Ok(CimdSettings::default()));
        let hosts = read(&[("CIMD_ALLOWED_HOSTS", "Vscode.dev, claude.ai")], false).map(|s| s.allowed_hosts);
        assert_eq!(hosts, Ok(Some(vec!["vscode.dev".to_owned(), "claude.ai".to_owned()])));
        for (vars, loopback, name) in [
            (&[("CIMD_ENABLED", "yes")][..], false, "CIMD_ENABLED"),
            (&[("CIMD_CACHE_MIN_SECONDS", "600"), ("CIMD_CACHE_MAX_SECONDS", "60")][..], false, "CIMD_CACHE_MIN"),
            (&[("CIMD_FETCH_TIMEOUT_MS", "60000")][..], false, "CIMD_FETCH_TIMEOUT_MS"),
            (&[("CIMD_TEST_LOOPBACK_CA_FILE", "/tmp/ca.pem")][..], false, "CIMD_TEST_LOOPBACK_CA_FILE"),
            (&[("CIMD_TEST_LOOPBACK_CA_FILE", "/nonexistent/ca.pem")][..], true, "CIMD_TEST_LOOPBACK_CA_FILE"),
            (&[("CIMD_ALLOWED_HOSTS", "https://vscode.dev")][..], false, "CIMD_ALLOWED_HOSTS"),
            (&[("CIMD_ALLOWED_HOSTS", ",")][..], false, "CIMD_ALLOWED_HOSTS"),
        ] {
            let err = read(vars, loopback).err().unwrap_or_default();
            assert!(err.starts_with(name), "{vars:?}: {err}");
        }
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/cimd/ca.pem");
        assert!(read(&[("CIMD_TEST_LOOPBACK_CA_FILE", ca)], true).is_ok());
    }
}
