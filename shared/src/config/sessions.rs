//! Browser session lifetimes (docs/API.md, "Sessions and consent").
use super::{ConfigError, int_var};

const DAY: i64 = 86_400;

/// How long a browser stays signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends (`SESSION_IDLE_SECONDS`, default 24 hours).
    pub idle: i64,
    /// A session ends this long after its login, however much it is used
    /// (`SESSION_ABSOLUTE_SECONDS`, default 14 days).
    pub absolute: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self { idle: DAY, absolute: 14 * DAY }
    }
}

impl SessionLimits {
    /// Read both limits: idle 5 minutes to 30 days, absolute 5 minutes to 365 days, idle
    /// not above absolute.
    ///
    /// # Errors
    /// A value out of range, or idle above absolute.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let idle = int_var(get, "SESSION_IDLE_SECONDS", d.idle, 300, 30 * DAY)?;
        let absolute = int_var(get, "SESSION_ABSOLUTE_SECONDS", d.absolute, 300, 365 * DAY)?;
        if idle > absolute {
            return Err(ConfigError::Invalid {
                name: "SESSION_IDLE_SECONDS",
                reason: "must not exceed SESSION_ABSOLUTE_SECONDS".into(),
            });
        }
        Ok(Self { idle, absolute })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<SessionLimits, String> {
        SessionLimits::from_lookup(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_a_day_idle_and_two_weeks_absolute_and_bad_values_name_the_variable() {
        assert_eq!(read(&[]), Ok(SessionLimits { idle: 86_400, absolute: 1_209_600 }));
        assert_eq!(
            read(&[("SESSION_IDLE_SECONDS", "600"), ("SESSION_ABSOLUTE_SECONDS", "3600")]),
            Ok(SessionLimits { idle: 600, absolute: 3600 })
        );
        for (vars, name) in [
            (&[("SESSION_IDLE_SECONDS", "59")][..], "SESSION_IDLE_SECONDS"),
            (&[("SESSION_ABSOLUTE_SECONDS", "x")][..], "SESSION_ABSOLUTE_SECONDS"),
            (&[("SESSION_IDLE_SECONDS", "7200"), ("SESSION_ABSOLUTE_SECONDS", "3600")][..], "SESSION_IDLE_SECONDS"),
        ] {
            let err = read(vars).err().unwrap_or_default();
            assert!(err.starts_with(name), "{vars:?}: {err}");
        }
    }
}
