//! The browser-facing pages: login and consent, the authorization error page, the logout
//! confirmation and signed-out pages, and the account page.
//! Compile-time templates (askama) with HTML auto-escaping; no JavaScript, no third-party
//! assets. The only style is inline and allowed by its hash in the CSP.
use crate::oauth::account::{AccountPage, SignInPage};
use crate::oauth::authorize::LoginPage;
use crate::oauth::device::verify::EntryPage;
use crate::oauth::logout::ConfirmPage;
use askama::Template;
use base64::Engine;
use std::sync::OnceLock;

/// The pages' stylesheet (inline; readable on a phone).
const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}\
main{max-width:26rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.5rem;margin:0 0 .75rem}h2{font-size:1rem;margin:1.25rem 0 .5rem}\
.note,.client-id{font-size:.85rem;color:#4a5568}.scopes{padding-left:1.25rem}.scopes li{margin:.25rem 0}\
.code{font-family:ui-monospace,monospace;font-size:.8rem;color:#4a5568}\
label{display:block;margin:.75rem 0 .25rem;font-weight:600}\
input{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border:1px solid #a0aec0;border-radius:.4rem}\
.buttons{display:flex;gap:.75rem;margin-top:1.25rem}\
button{flex:1;padding:.7rem;font-size:1rem;border:0;border-radius:.4rem;background:#2b6cb0;color:#fff;cursor:pointer}\
button.secondary{background:#e2e8f0;color:#1d2330}\
.error{background:#fff5f5;border:1px solid #feb2b2;color:#9b2c2c;padding:.6rem;border-radius:.4rem}\
.notice{background:#f0fff4;border:1px solid #9ae6b4;color:#22543d;padding:.6rem;border-radius:.4rem}\
h3{font-size:1rem;margin:0 0 .25rem}.item{border-top:1px solid #e2e8f0;padding:.75rem 0}\
.item form .buttons,.item form{margin-top:.5rem}.sessions{padding-left:1.25rem;font-size:.9rem}\
a{color:#2b6cb0}.providers button{display:block;width:100%;margin:.5rem 0}\
.user-code{font-family:ui-monospace,monospace;letter-spacing:.1em;white-space:nowrap}";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate<'a> {
    page: &'a LoginPage,
    action: &'a str,
    css: &'static str,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DeviceTemplate<'a> {
    page: &'a EntryPage,
    action: &'a str,
    account: &'a str,
    css: &'static str,
}

/// Render the device verification page's code entry form, posting to `action`.
///
/// # Errors
/// Template rendering failed.
pub fn device(page: &EntryPage, action: &str, account: &str) -> Result<String, askama::Error> {
    DeviceTemplate { page, action, account, css: CSS }.render()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    message: &'a str,
    css: &'static str,
}

#[derive(Template)]
#[template(path = "error_link.html")]
struct ErrorLinkTemplate<'a> {
    message: &'a str,
    host: &'a str,
    link: &'a str,
    css: &'static str,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutTemplate<'a> {
    page: &'a ConfirmPage,
    action: &'a str,
    css: &'static str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutTemplate<'a> {
    title: &'a str,
    message: &'a str,
    link: Option<(&'a str, &'a str)>,
    account: &'a str,
    css: &'static str,
}

#[derive(Template)]
#[template(path = "account_signin.html")]
struct AccountSignInTemplate<'a> {
    page: &'a SignInPage,
    action: &'a str,
    css: &'static str,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTemplate<'a> {
    page: &'a AccountPage,
    action: &'a str,
    css: &'static str,
}

/// Render the logout confirmation page, posting to `action`.
///
/// # Errors
/// Template rendering failed.
pub fn logout(page: &ConfirmPage, action: &str) -> Result<String, askama::Error> {
    LogoutTemplate { page, action, css: CSS }.render()
}

/// Render a page that only says something (`title`, `message`): signed out, still signed
/// in; `link` is (host, URI) of where the application asked to continue; `account` the
/// account page's URL.
///
/// # Errors
/// Template rendering failed.
pub fn notice(title: &str, message: &str, link: Option<(&str, &str)>, account: &str) -> Result<String, askama::Error> {
    SignedOutTemplate { title, message, link, account, css: CSS }.render()
}

/// Render the account page's sign-in form, posting to `action`.
///
/// # Errors
/// Template rendering failed.
pub fn account_sign_in(page: &SignInPage, action: &str) -> Result<String, askama::Error> {
    AccountSignInTemplate { page, action, css: CSS }.render()
}

/// Render the account page, its forms posting to `action`.
///
/// # Errors
/// Template rendering failed.
pub fn account(page: &AccountPage, action: &str) -> Result<String, askama::Error> {
    AccountTemplate { page, action, css: CSS }.render()
}

/// Render the error page of a client from open registration: the error, and a link back to
/// the application at `host`.
///
/// # Errors
/// Template rendering failed.
pub fn error_link(message: &str, host: &str, link: &str) -> Result<String, askama::Error> {
    ErrorLinkTemplate { message, host, link, css: CSS }.render()
}

/// Render the login and consent page, posting to `action`.
///
/// # Errors
/// Template rendering failed.
pub fn login(page: &LoginPage, action: &str) -> Result<String, askama::Error> {
    LoginTemplate { page, action, css: CSS }.render()
}

/// Render the error page.
///
/// # Errors
/// Template rendering failed.
pub fn error(message: &str) -> Result<String, askama::Error> {
    ErrorTemplate { message, css: CSS }.render()
}

fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(crate::crypto::sha256(CSS.as_bytes())))
    })
}

/// The Content-Security-Policy of a page: nothing but its own style; forms may post to
/// this server and (after the 303) land on `form_target`; no framing (RFC 9700 §4.16).
pub fn csp(form_target: Option<&str>) -> String {
    // Space-separated sources (the redirect URI's origin, the upstream providers'), each
    // refused whole if it could end the directive or add a keyword.
    let form = match form_target
        .filter(|t| !t.trim().is_empty() && t.split(' ').all(|s| !s.is_empty() && !s.contains([';', ',', '\''])))
    {
        Some(t) => format!("'self' {t}"),
        None => "'none'".to_owned(),
    };
    format!(
        "default-src 'none'; style-src {}; img-src 'none'; form-action {form}; frame-ancestors 'none'; base-uri 'none'",
        style_hash()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LoginPage {
        LoginPage {
            client_name: "<img src=x onerror=alert(1)>".into(),
            client_id: "cl_1".into(),
            document_host: None,
            redirect_host: "client.example".into(),
            redirect_origin: "https://client.example".into(),
            scopes: vec![("openid".into(), "Confirm who you are (sign you in)".into())],
            resources: vec![("<i>Orders</i>".into(), "https://orders.example".into())],
            sealed: "a\"b".into(),
            username: "<script>".into(),
            signed_in_as: None,
            error: Some("bad & wrong".into()),
            providers: vec![("idp".into(), "<b>IdP</b>".into())],
            upstream_origins: vec!["https://idp.example".into()],
            device: None,
            signup: true,
        }
    }

    #[test]
    fn the_login_page_escapes_everything_it_reflects() -> Result<(), askama::Error> {
        let html = login(&sample(), "https://as.test/oauth/authorize")?;
        assert!(!html.contains("<img") && !html.contains("<script>") && !html.contains("<i>"), "{html}");
        assert!(html.contains("https://orders.example"), "the resource is named: {html}");
        assert!(html.contains("onerror=alert(1)"), "the name is shown, escaped: {html}");
        assert!(!html.contains("value=\"a\"b\""));
        assert!(
            html.contains("name=\"decision\" value=\"allow\"") && html.contains("name=\"decision\" value=\"deny\"")
        );
        assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
        assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("src=\"http"));
        Ok(())
    }

    #[test]
    fn the_consent_page_of_a_signed_in_user_has_no_password_field_and_escapes_the_name() -> Result<(), askama::Error> {
        let page = LoginPage { signed_in_as: Some("<b>bob</b>".into()), error: None, ..sample() };
        let html = login(&page, "https://as.test/oauth/authorize")?;
        assert!(html.contains("signed in as <strong>&#60;b&#62;bob&#60;/b&#62;</strong>"), "{html}");
        assert!(!html.contains("name=\"password\"") && !html.contains("name=\"username\""));
        assert!(html.contains("name=\"decision\" value=\"allow\"") && html.contains("name=\"request\""));
        Ok(())
    }

    #[test]
    fn the_style_is_allowed_by_hash_and_nothing_else() {
        let policy = csp(Some("https://client.example"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains("default-src 'none'"));
        assert!(policy.contains("form-action 'self' https://client.example"));
        assert!(!policy.contains("unsafe-inline"));
        assert!(csp(Some("x; script-src *")).contains("form-action 'none'"));
        let two = csp(Some("https://client.example https://idp.example"));
        assert!(two.contains("form-action 'self' https://client.example https://idp.example;"), "{two}");
        for bad in ["https://a.example 'unsafe-inline'", "https://a.example  https://b.example", " "] {
            assert!(csp(Some(bad)).contains("form-action 'none'"), "{bad}");
        }
    }

    #[test]
    fn the_login_page_offers_each_provider_as_a_form_post_with_escaped_names() -> Result<(), askama::Error> {
        let html = login(&sample(), "https://as.test/oauth/authorize")?;
        assert!(html.contains("name=\"decision\" value=\"federate\""), "{html}");
        assert!(
            html.contains(
                "name=\"provider\" value=\"idp\" class=\"secondary\">Continue with &#60;b&#62;IdP&#60;/b&#62;</button>"
            ),
            "{html}"
        );
        let signed_in = LoginPage { signed_in_as: Some("bob".into()), providers: vec![], ..sample() };
        assert!(!login(&signed_in, "https://as.test/oauth/authorize")?.contains("federate"));
        Ok(())
    }
}
