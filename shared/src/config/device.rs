//! The device authorization grant (docs/API.md, "Device authorization grant").
use super::{ConfigError, int_var};

/// Device-flow lifetimes and the user-code entry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSettings {
    /// How long a device code and its user code live (`DEVICE_CODE_TTL_SECONDS`, default
    /// 600, 60 to 1800).
    pub code_ttl: i64,
    /// The polling interval a device is told (`DEVICE_POLL_INTERVAL_SECONDS`, default 5,
    /// 1 to 60).
    pub interval: i64,
    /// User codes one address may enter in a window of `code_ttl` seconds
    /// (`DEVICE_ENTRY_LIMIT_PER_IP`, default 20).
    pub entries_per_address: u32,
    /// User codes one browser (its session, or before sign-in its CSRF cookie) may enter
    /// in that window (`DEVICE_ENTRY_LIMIT_PER_BROWSER`, default 10).
    pub entries_per_browser: u32,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self { code_ttl: 600, interval: 5, entries_per_address: 20, entries_per_browser: 10 }
    }
}

impl DeviceSettings {
    /// Read the settings.
    ///
    /// # Errors
    /// A value out of range.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            code_ttl: int_var(get, "DEVICE_CODE_TTL_SECONDS", d.code_ttl, 60, 1800)?,
            interval: int_var(get, "DEVICE_POLL_INTERVAL_SECONDS", d.interval, 1, 60)?,
            entries_per_address: int_var(get, "DEVICE_ENTRY_LIMIT_PER_IP", d.entries_per_address, 1, 100_000)?,
            entries_per_browser: int_var(get, "DEVICE_ENTRY_LIMIT_PER_BROWSER", d.entries_per_browser, 1, 100_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<DeviceSettings, String> {
        DeviceSettings::from_lookup(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_ten_minutes_and_five_seconds_and_bad_values_name_the_variable() {
        assert_eq!(read(&[]), Ok(DeviceSettings::default()));
        assert_eq!(
            read(&[("DEVICE_CODE_TTL_SECONDS", "120"), ("DEVICE_POLL_INTERVAL_SECONDS", "2")])
                .map(|d| (d.code_ttl, d.interval)),
            Ok((120, 2))
        );
        for (name, value) in [
            ("DEVICE_CODE_TTL_SECONDS", "59"),
            ("DEVICE_CODE_TTL_SECONDS", "3600"),
            ("DEVICE_POLL_INTERVAL_SECONDS", "0"),
            ("DEVICE_ENTRY_LIMIT_PER_IP", "0"),
            ("DEVICE_ENTRY_LIMIT_PER_BROWSER", "x"),
        ] {
            let err = read(&[(name, value)]).err().unwrap_or_default();
            assert!(err.starts_with(name), "{name}={value}: {err}");
        }
    }
}
