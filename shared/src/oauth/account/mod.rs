//! The account page (docs/API.md, "GET/POST /account"): a signed-in user sees the
//! applications they allowed and their browser sessions, disconnects an application (its
//! grant removed, its refresh families revoked), signs out of every browser, and changes the
//! password (the current one required; every other session ends). Signing in here uses the
//! authorization endpoint's throttled password check and begins the same session.
//!
//! Every form is bound to the browser: the sign-in form to the CSRF cookie (a sealed
//! document), the signed-in forms to the session (a MAC of its id hash under the form key),
//! and each post must come from this origin.
mod forms;
pub use forms::{Submission, disconnect, submit};

use super::Description;
use super::sealed::{self, Sealable};
use super::session::{self, Browser, SessionCookie};
use crate::App;
use crate::crypto::{ct_eq, random_id, sha256_b64};
use crate::domain::{Client, Session};
use crate::store::StoreError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use time::OffsetDateTime;

/// How long the sign-in form stays valid.
pub const SIGN_IN_TTL_SECONDS: i64 = 3600;
/// Most applications listed (a user with more sees the most recently allowed).
const MAX_APPS: usize = 100;

/// What happened, shown once after the redirect that follows a form (`?done=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Signed in.
    SignedIn,
    /// An application was disconnected.
    Disconnected,
    /// This browser signed out.
    SignedOut,
    /// Every browser signed out.
    SignedOutEverywhere,
    /// The password changed.
    PasswordChanged,
    /// An upstream identity was linked.
    Linked,
    /// An upstream identity was unlinked.
    Unlinked,
    /// Linking did not work (cancelled, refused, or the session changed meanwhile).
    LinkFailed,
    /// That upstream account is linked to another account here.
    LinkTaken,
    /// The identity was kept: it is the last way to sign in.
    LastMethod,
}

const NOTICES: [Notice; 10] = [
    Notice::SignedIn,
    Notice::Disconnected,
    Notice::SignedOut,
    Notice::SignedOutEverywhere,
    Notice::PasswordChanged,
    Notice::Linked,
    Notice::Unlinked,
    Notice::LinkFailed,
    Notice::LinkTaken,
    Notice::LastMethod,
];

impl Notice {
    /// The `done` query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedIn => "signed_in",
            Self::Disconnected => "disconnected",
            Self::SignedOut => "signed_out",
            Self::SignedOutEverywhere => "signed_out_everywhere",
            Self::PasswordChanged => "password_changed",
            Self::Linked => "linked",
            Self::Unlinked => "unlinked",
            Self::LinkFailed => "link_failed",
            Self::LinkTaken => "link_taken",
            Self::LastMethod => "last_method",
        }
    }

    /// From the `done` query value; anything else shows nothing.
    pub fn parse(s: &str) -> Option<Self> {
        NOTICES.into_iter().find(|n| n.as_str() == s)
    }

    /// What the page says.
    pub fn message(self) -> &'static str {
        match self {
            Self::SignedIn => "You are signed in.",
            Self::Disconnected => "The application was disconnected: it can no longer use your account.",
            Self::SignedOut => "You signed out of this browser.",
            Self::SignedOutEverywhere => "You signed out of every browser.",
            Self::PasswordChanged => "Your password was changed, and every other browser was signed out.",
            Self::Linked => "The account was connected: you can now sign in with it.",
            Self::Unlinked => "The account was disconnected: it can no longer sign you in here.",
            Self::LinkFailed => "The account could not be connected. Try again.",
            Self::LinkTaken => "That account already signs in to another account here, so it was not connected.",
            Self::LastMethod => "That account is your only way to sign in, so it was kept.",
        }
    }
}

/// What the session cookie does with the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCookieChange {
    /// Nothing.
    Keep,
    /// A new session began: this value.
    Set(String),
    /// The session ended: clear it.
    Clear,
}

/// What the browser is shown.
#[derive(Debug)]
pub enum Outcome {
    /// A form that cannot be accepted (another site, tampered, expired): 400.
    ErrorPage(Description),
    /// A dependency failed: 503 with `Retry-After`.
    Unavailable,
    /// The sign-in form, with the HTTP status (200, 401 or 429).
    SignIn(Box<SignInPage>, u16),
    /// The account page, with the HTTP status (200, or 400/401/429 after a refused
    /// password change).
    Account(Box<AccountPage>, u16),
    /// 303 back to the account page, showing `notice`.
    Done {
        /// What to say there.
        notice: Option<Notice>,
        /// The session cookie's change.
        cookie: SessionCookieChange,
    },
    /// To an upstream provider (303) to connect an account there, with the flow cookie.
    Upstream {
        /// The provider's authorization request.
        location: String,
        /// The flow cookie's value.
        flow_cookie: String,
    },
}

/// The sign-in form of the account page.
#[derive(Debug)]
pub struct SignInPage {
    /// The sealed sign-in (hidden field).
    pub sealed: String,
    /// Username to prefill after a failed attempt.
    pub username: String,
    /// The failure message, if any.
    pub error: Option<&'static str>,
    /// What happened before, if anything.
    pub notice: Option<&'static str>,
}

/// One application the user allowed.
#[derive(Debug)]
pub struct AppRow {
    /// Its client id (the disconnect form names it).
    pub client_id: String,
    /// Its name, or its id.
    pub name: String,
    /// The host it sends users back to.
    pub host: String,
    /// What it may do, in plain words.
    pub scopes: Vec<String>,
    /// When the user first allowed it (UTC).
    pub allowed: String,
    /// When it last got tokens (UTC), if ever.
    pub last_used: Option<String>,
}

/// One browser session of the user.
#[derive(Debug)]
pub struct SessionRow {
    /// The browser showing the page.
    pub this_browser: bool,
    /// When it signed in (UTC).
    pub signed_in: String,
    /// When it was last used (UTC).
    pub last_seen: String,
}

/// One upstream account linked to the user.
#[derive(Debug)]
pub struct IdentityRow {
    /// Its key (the unlink form names it).
    pub key: String,
    /// The provider's name (or id, when no longer configured).
    pub provider: String,
    /// The e-mail address the provider stated, and whether it said it verified it.
    pub email: Option<(String, bool)>,
    /// When it was linked (UTC).
    pub linked: String,
}

/// The account page.
#[derive(Debug)]
pub struct AccountPage {
    /// The user's name.
    pub username: String,
    /// Whether the user has a password (a user created by a provider has none).
    pub has_password: bool,
    /// The upstream accounts linked to the user.
    pub identities: Vec<IdentityRow>,
    /// The providers the user can connect (id, name): those not linked yet.
    pub connect: Vec<(String, String)>,
    /// The origins the connect buttons lead to (the CSP `form-action`).
    pub upstream_origins: Vec<String>,
    /// The applications they allowed.
    pub apps: Vec<AppRow>,
    /// Their live browser sessions, newest first.
    pub sessions: Vec<SessionRow>,
    /// The token every form of the page carries (bound to this browser's session).
    pub csrf: String,
    /// What happened before, if anything.
    pub notice: Option<&'static str>,
    /// Why the last form was refused, if it was.
    pub error: Option<Cow<'static, str>>,
}

/// The sign-in form's sealed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// Unique id.
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// SHA-256 of the CSRF cookie the form is bound to.
    pub csrf: String,
}

impl Sealable for PendingSignIn {
    const PURPOSE: &'static str = "account-sign-in";
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

fn page(text: &'static str) -> Outcome {
    Outcome::ErrorPage(Cow::Borrowed(text))
}

fn unavailable(e: &StoreError) -> Outcome {
    tracing::error!(error = %e, "store failed on the account page");
    Outcome::Unavailable
}

/// The token of the signed-in forms: a MAC of the session's id hash under `key`. Only this
/// server can make it, and only for this browser's session.
fn form_token(key: &aws_lc_rs::hmac::Key, session_id_hash: &str) -> String {
    let tag = aws_lc_rs::hmac::sign(key, format!("oauth-core/account/v1|{session_id_hash}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

fn token_matches(app: &App, session_id_hash: &str, presented: &str) -> bool {
    app.form_keys().iter().any(|k| ct_eq(form_token(k, session_id_hash).as_bytes(), presented.as_bytes()))
}

/// A date for the page: `2026-12-06 17:30 UTC`.
fn when(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

fn sign_in_page(
    app: &App,
    csrf_cookie: &str,
    username: &str,
    error: Option<&'static str>,
    notice: Option<Notice>,
    now: i64,
) -> Result<SignInPage, Outcome> {
    let pending = PendingSignIn {
        id: random_id("si_").map_err(|_| Outcome::Unavailable)?,
        expires_at: now + SIGN_IN_TTL_SECONDS,
        csrf: sha256_b64(csrf_cookie),
    };
    Ok(SignInPage {
        sealed: sealed::seal(&app.form_key(), &pending).map_err(|_| Outcome::Unavailable)?,
        username: username.chars().take(64).collect(),
        error,
        notice: notice.map(Notice::message),
    })
}

/// The live session of the browser, if any.
async fn signed_in(app: &App, cookie: Option<&SessionCookie>, now: OffsetDateTime) -> Result<Option<Session>, Outcome> {
    let Some(c) = cookie else { return Ok(None) };
    Ok(session::find(app, c, None, now).await.map_err(|e| unavailable(&e))?.map(|(s, _)| s))
}

/// `GET /account` at `now`: the account page of the signed-in browser, or the sign-in form.
/// `done` is the `done` query value after a form's redirect.
pub async fn show(app: &App, browser: Browser<'_>, done: Option<&str>, now: OffsetDateTime) -> Outcome {
    let notice = done.and_then(Notice::parse);
    let session = match signed_in(app, browser.session, now).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let result = match session {
        Some(s) => account_page(app, &s, notice, None, now).await.map(|p| Outcome::Account(Box::new(p), 200)),
        None => sign_in_page(app, browser.csrf_cookie, "", None, notice, now.unix_timestamp())
            .map(|p| Outcome::SignIn(Box::new(p), 200)),
    };
    result.unwrap_or_else(|o| o)
}

async fn account_page(
    app: &App,
    session: &Session,
    notice: Option<Notice>,
    error: Option<Cow<'static, str>>,
    now: OffsetDateTime,
) -> Result<AccountPage, Outcome> {
    let user = app.users.user_by_sub(&session.sub).await.map_err(|e| unavailable(&e))?;
    let Some(user) = user else { return Err(page("This account no longer exists.")) };
    let mut grants = app.grants.grants_of(&session.sub).await.map_err(|e| unavailable(&e))?;
    grants.sort_by(|a, b| b.granted_at.cmp(&a.granted_at).then_with(|| a.client_id.cmp(&b.client_id)));
    grants.truncate(MAX_APPS);
    let catalog = app.resources.catalog(now.unix_timestamp()).await.map_err(|e| unavailable(&e))?;
    let mut apps = Vec::with_capacity(grants.len());
    for g in grants {
        // A document client is shown from this process's cache, never fetched here (one slow
        // document per listed client would hold the page); else by its URL.
        let client = if crate::oauth::cimd::is_document_url(&g.client_id) {
            app.cimd.cached(&g.client_id, now.unix_timestamp())
        } else {
            app.clients.client(&g.client_id).await.map_err(|e| unavailable(&e))?
        };
        let (name, host) = match &client {
            Some(c) => (c.client_name.clone().unwrap_or_else(|| c.client_id.clone()), redirect_host(c)),
            // A grant outliving its client: still listed, so it can be removed.
            None => (g.client_id.clone(), String::new()),
        };
        apps.push(AppRow {
            client_id: g.client_id,
            name,
            host,
            scopes: g.scope.iter().map(|s| catalog.describe(s)).collect(),
            allowed: when(g.granted_at),
            last_used: g.last_used.map(when),
        });
    }
    let sessions = app.sessions.sessions_of(&session.sub, now).await.map_err(|e| unavailable(&e))?;
    let links = app.identities.identities_of(&session.sub).await.map_err(|e| unavailable(&e))?;
    let provider_name = |id: &str| app.federation.get(id).map_or_else(|| id.to_owned(), |u| u.config.name.clone());
    let unlinked: Vec<_> = app.federation.all().filter(|u| !links.iter().any(|l| l.provider == u.config.id)).collect();
    Ok(AccountPage {
        username: user.username.as_str().to_owned(),
        has_password: user.has_password(),
        identities: links
            .iter()
            .map(|l| IdentityRow {
                key: l.key(),
                provider: provider_name(&l.provider),
                email: l.email.clone().map(|e| (e, l.email_verified)),
                linked: when(l.linked_at),
            })
            .collect(),
        connect: unlinked.iter().map(|u| (u.config.id.clone(), u.config.name.clone())).collect(),
        upstream_origins: unlinked.iter().map(|u| app.federation.form_action_origin(u)).collect(),
        apps,
        sessions: sessions
            .iter()
            .map(|s| SessionRow {
                this_browser: s.id_hash == session.id_hash,
                signed_in: when(s.auth_time),
                last_seen: when(s.last_seen),
            })
            .collect(),
        csrf: form_token(&app.form_key(), &session.id_hash),
        notice: notice.map(Notice::message),
        error,
    })
}

fn redirect_host(c: &Client) -> String {
    c.redirect_uris.first().map(|u| super::authorize::host_and_origin(u.as_str()).0).unwrap_or_default()
}
