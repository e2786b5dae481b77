//! The verification page `/device` (RFC 8628 §3.3): the user types the code their device
//! shows (or opens the link that carries it, then confirms), and continues on the
//! authorization endpoint's login and consent page, which names the client, the scopes and
//! the code, and warns that only the person holding the device should allow it (§5.4).
//! Entries are counted per address and per browser (§5.1); a wrong, expired or used code
//! gets one message; each request is decided once.
use crate::App;
use crate::crypto::sha256_b64;
use crate::domain::{DeviceGrant, DeviceStatus, Session, normalize_user_code};
use crate::oauth::abuse::address_bucket;
use crate::oauth::authorize::{self, FORM_TTL_SECONDS, Outcome};
use crate::oauth::params::Params;
use crate::oauth::sealed::{DeviceRef, PendingRequest};
use crate::oauth::session::{self, Browser};
use std::net::IpAddr;
use time::OffsetDateTime;

/// What every code that cannot be used gets: it reveals nothing of why.
pub const WRONG_CODE: &str =
    "That code is not valid, has expired or was already used. Check the code your device shows, or start again there.";
/// Beyond the entry limits.
pub const TOO_MANY: &str = "Too many codes were entered from here. Wait a few minutes, then try again.";

/// The code entry form.
#[derive(Debug, Default)]
pub struct EntryPage {
    /// The code to prefill (from the link, or as typed before a refusal).
    pub user_code: String,
    /// Why the last code was refused.
    pub error: Option<&'static str>,
    /// What happened, after a decision (`?done=`).
    pub notice: Option<&'static str>,
}

/// What the browser is shown.
#[derive(Debug)]
pub enum Entry {
    /// The entry form, with the HTTP status (200, 400 or 429).
    Form(EntryPage, u16),
    /// The login and consent page for the request (or why it cannot be shown).
    Authorize(Outcome),
}

/// `GET /device`: the form, with `user_code` prefilled from the link, or the notice after
/// a decision.
pub fn show(query: &Params) -> EntryPage {
    let notice = match query.get("done") {
        Some("approved") => Some("Your device is connected. You can close this page and go back to your device."),
        Some("denied") => Some("The request was denied: your device was not connected."),
        _ => None,
    };
    EntryPage { user_code: prefill(query.get("user_code")), error: None, notice }
}

fn prefill(typed: Option<&str>) -> String {
    typed.unwrap_or_default().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(16).collect()
}

/// A submitted code (`POST /device`).
#[derive(Debug)]
pub struct Submitted<'a> {
    /// The form.
    pub form: &'a Params,
    /// The browser's cookies (the CSRF cookie the next form binds to, the session).
    pub browser: Browser<'a>,
    /// Whether `Origin`/`Sec-Fetch-Site` allow a same-origin form post.
    pub same_origin: bool,
    /// The caller's address.
    pub source_ip: Option<IpAddr>,
}

/// Check a submitted code and show its login and consent page.
pub async fn enter(app: &App, s: Submitted<'_>, now: OffsetDateTime) -> Entry {
    if !s.same_origin {
        return Entry::Authorize(Outcome::ErrorPage("This form was submitted from another site.".into()));
    }
    let typed = s.form.get("user_code");
    let again =
        |error, status| Entry::Form(EntryPage { user_code: prefill(typed), error: Some(error), notice: None }, status);
    match within_limits(app, &s, now).await {
        Ok(true) => {}
        Ok(false) => return again(TOO_MANY, 429),
        Err(e) => return Entry::Authorize(store_down(&e)),
    }
    let Some(code) = typed.and_then(normalize_user_code) else { return again(WRONG_CODE, 400) };
    let device = match app.devices.device_by_user_code(&sha256_b64(&code)).await {
        Ok(Some(d)) if d.status == DeviceStatus::Pending && d.expires_at > now.unix_timestamp() => d,
        Ok(_) => {
            tracing::info!(event = "device_code_refused", source_ip = ?s.source_ip, "a user code that is not pending was entered");
            return again(WRONG_CODE, 400);
        }
        Err(e) => return Entry::Authorize(store_down(&e)),
    };
    Entry::Authorize(page_for(app, &device, &code, s.browser, now).await.unwrap_or_else(|o| o))
}

fn store_down(e: &crate::store::StoreError) -> Outcome {
    tracing::error!(error = %e, "store failed at the device verification page");
    Outcome::Unavailable
}

/// Count this entry against the address and the browser (its session when signed in, else
/// its CSRF cookie); `false` beyond either limit.
async fn within_limits(app: &App, s: &Submitted<'_>, now: OffsetDateTime) -> Result<bool, crate::store::StoreError> {
    let d = &app.settings.device;
    if let Some(ip) = s.source_ip
        && app.throttle.hit(&format!("device#ip#{}", address_bucket(ip)), d.code_ttl, now).await?
            > d.entries_per_address
    {
        tracing::warn!(event = "rate_limited", limit = "device_entry", source_ip = %ip, "per-address user-code limit reached");
        return Ok(false);
    }
    let browser = s.browser.session.map_or_else(|| sha256_b64(s.browser.csrf_cookie), |c| c.id_hash.clone());
    let n = app.throttle.hit(&format!("device#browser#{browser}"), d.code_ttl, now).await?;
    if n > d.entries_per_browser {
        tracing::warn!(event = "rate_limited", limit = "device_entry_browser", "per-browser user-code limit reached");
        return Ok(false);
    }
    Ok(true)
}

/// The login page (or, for a signed-in user, the consent page) of `device`'s request.
async fn page_for(
    app: &App,
    device: &DeviceGrant,
    code: &str,
    browser: Browser<'_>,
    now: OffsetDateTime,
) -> Result<Outcome, Outcome> {
    let client = authorize::client(app, &device.client_id, now).await?;
    let catalog = app.resources.catalog(now.unix_timestamp()).await.map_err(|e| store_down(&e))?;
    let mut pending = PendingRequest {
        id: crate::crypto::random_id("req_").map_err(|_| Outcome::Unavailable)?,
        client_id: client.client_id.clone(),
        redirect_uri: app.settings.url(crate::paths::DEVICE),
        redirect_uri_sent: false,
        scope: device.scope.to_string(),
        resources: device.resources.clone(),
        state: None,
        nonce: None,
        code_challenge: String::new(),
        expires_at: (now.unix_timestamp() + FORM_TTL_SECONDS).min(device.expires_at),
        csrf: sha256_b64(browser.csrf_cookie),
        sub: None,
        hint_sub: None,
        prompt_login: false,
        max_age: None,
        dpop_jkt: None,
        device: Some(DeviceRef {
            hash: device.device_hash.clone(),
            user_code: crate::domain::display_user_code(code),
            expires_at: device.expires_at,
        }),
    };
    let signed_in = match browser.session {
        Some(c) => session::find(app, c, None, now).await.map_err(|e| store_down(&e))?,
        None => None,
    };
    let user = match &signed_in {
        Some((session, _)) => app.users.user_by_sub(&session.sub).await.map_err(|e| store_down(&e))?,
        None => None,
    };
    // Always a page, never a silent approval: the user confirms this device even when they
    // allowed the client before.
    if let Some(user) = &user {
        pending.sub = Some(user.sub.clone());
    }
    let mut page =
        authorize::login_page(app, &catalog, &client, &pending, "", None).map_err(|_| Outcome::Unavailable)?;
    if let Some(user) = user {
        page.show_signed_in(&user);
    }
    Ok(Outcome::Login(Box::new(page), 200))
}

/// Where the browser lands after a decision.
fn done(app: &App, what: &str) -> Outcome {
    Outcome::Redirect(authorize::redirect_to(&app.settings.url(crate::paths::DEVICE), &[("done", what)]))
}

const DECIDED: &str = "This code was already used or has expired. Start again on your device.";

/// The user of `session` allowed the request of `pending` (their consent is recorded):
/// the approval, an authorization code only the device's code can redeem, is stored with
/// the decision in one atomic write. The device's tokens are its own: they do not end with
/// this browser's session (refresh tokens come with `offline_access`).
pub(crate) async fn approve(
    app: &App,
    pending: &PendingRequest,
    device: &DeviceRef,
    session: &Session,
    now: OffsetDateTime,
) -> Result<Outcome, Outcome> {
    let mut approval = crate::oauth::authorize::code::record(
        pending,
        session,
        DeviceGrant::approval_hash(&device.hash),
        device.expires_at,
    )
    .map_err(|_| Outcome::Unavailable)?;
    approval.session = None;
    approval.redirect_uri = String::new();
    match app.devices.decide_device(&device.hash, Some(&approval), now).await {
        Ok(true) => {
            tracing::info!(event = "device_approved", sub = %session.sub, client_id = %pending.client_id, family_id = %approval.family_id, "device request allowed");
            Ok(done(app, "approved"))
        }
        Ok(false) => Err(Outcome::ErrorPage(DECIDED.into())),
        Err(e) => Err(store_down(&e)),
    }
}

/// The user denied the request of `pending`.
pub(crate) async fn deny(app: &App, pending: &PendingRequest, device: &DeviceRef, now: OffsetDateTime) -> Outcome {
    match app.devices.decide_device(&device.hash, None, now).await {
        Ok(true) => {
            tracing::info!(event = "device_denied", client_id = %pending.client_id, "device request denied");
            done(app, "denied")
        }
        Ok(false) => Outcome::ErrorPage(DECIDED.into()),
        Err(e) => store_down(&e),
    }
}
