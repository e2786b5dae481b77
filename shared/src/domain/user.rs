//! Usernames, passwords and e-mail addresses as `POST /register` accepts them.
use crate::crypto::Secret;
use std::fmt;

/// 3–64 characters from `A-Z a-z 0-9 . _ - @ +`; uniqueness is on the lowercase form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Validate a username.
    ///
    /// # Errors
    /// A human-readable reason, safe to show to the client.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !(3..=64).contains(&s.len()) {
            return Err("username must be 3 to 64 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_@+".contains(&b)) {
            return Err("username may contain only A-Z a-z 0-9 . _ - @ +");
        }
        Ok(Self(s.to_owned()))
    }
    /// The form uniqueness is decided on (ASCII lowercase; the alphabet is ASCII only).
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
    /// The username as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A candidate password: 8–1024 bytes of UTF-8, no control characters, not the username,
/// not one of the most common passwords. Used exactly as received (no trimming or folding).
pub struct Password(Secret);

/// The most common passwords of 8+ characters (breach corpora top lists); refused outright.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "qwerty123",
    "qwerty12345",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "abc12345",
    "abcd1234",
    "admin123",
    "administrator",
    "letmein1",
    "trustno1",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "11111111",
    "00000000",
    "88888888",
    "87654321",
    "asdfghjkl",
    "zaq12wsx",
    "superman",
    "starwars",
    "whatever",
    "computer",
    "michelle",
    "jennifer",
    "corvette",
    "changeme",
    "qwertyui",
    "aa123456",
    "123123123",
    "987654321",
    "monkey123",
    "dragon123",
    "shadow123",
    "master123",
    "password!",
    "Password1",
    "Password123",
    "Password1!",
    "Qwerty123",
    "qazwsxedc",
    "1234qwer",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "access14",
    "mustang1",
    "michael1",
];

impl Password {
    /// Validate a password for registration.
    ///
    /// # Errors
    /// A human-readable reason that never contains the password.
    pub fn parse(s: &str, username: &Username) -> Result<Self, &'static str> {
        if s.len() < 8 {
            return Err("password must be at least 8 bytes of UTF-8");
        }
        if s.len() > 1024 {
            return Err("password must be at most 1024 bytes");
        }
        if s.chars().any(char::is_control) {
            return Err("password must not contain control characters");
        }
        if s.eq_ignore_ascii_case(username.as_str()) {
            return Err("password must not be the username");
        }
        if COMMON_PASSWORDS.iter().any(|p| p.eq_ignore_ascii_case(s)) {
            return Err("password is too common; choose another");
        }
        Ok(Self(Secret::new(s)))
    }
    /// The secret, for hashing.
    pub fn into_secret(self) -> Secret {
        self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A plausible e-mail address (`local@domain`, at most 254 bytes, no spaces or controls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validate an e-mail address.
    ///
    /// # Errors
    /// A human-readable reason.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let ok = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !s.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\\'));
        if ok { Ok(Self(s.to_owned())) } else { Err("email is not a valid address") }
    }
    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        let cases = [
            ("plain", "alice", true),
            ("all allowed symbols", "a.b_c-d@e+f", true),
            ("too short", "ab", false),
            ("64 chars", "a".repeat(64).leak() as &str, true),
            ("65 chars", "a".repeat(65).leak() as &str, false),
            ("space", "al ice", false),
            ("nul", "alice\0", false),
            ("fullwidth", "ａｌｉｃｅ", false),
            ("bidi override", "ali\u{202e}ce", false),
            ("slash", "a/b", false),
        ];
        for (name, input, ok) in cases {
            assert_eq!(Username::parse(input).is_ok(), ok, "{name}");
        }
        assert_eq!(Username::parse("ALICE").map(|u| u.key()), Ok("alice".to_owned()));
    }

    #[test]
    fn password_rules() -> Result<(), &'static str> {
        let alice = Username::parse("alice")?;
        let long = "x".repeat(1025);
        let cases = [
            ("7 chars", "abcdefg", false),
            ("8 chars", "abcdefgh", true),
            ("64 chars", &"Zq9!".repeat(16) as &str, true),
            ("1025 bytes", long.as_str(), false),
            ("equals username", "ALICE", false),
            ("common", "password123", false),
            ("control char", "abc\u{7}defgh", false),
        ];
        for (name, input, ok) in cases {
            assert_eq!(Password::parse(input, &alice).is_ok(), ok, "{name}");
        }
        Ok(())
    }

    #[test]
    fn password_debug_is_redacted() -> Result<(), &'static str> {
        let p = Password::parse("correct horse battery staple", &Username::parse("alice")?)?;
        assert_eq!(format!("{p:?}"), "Password([redacted])");
        Ok(())
    }

    #[test]
    fn email_rules() {
        for (input, ok) in [("a@b.co", true), ("a@b", false), ("@b.co", false), ("a b@c.co", false), ("a@@b.co", false)]
        {
            assert_eq!(Email::parse(input).is_ok(), ok, "{input}");
        }
    }
}
