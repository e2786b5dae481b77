//! `GET /federation/<id>/callback`: the provider's answer, checked in order (the flow
//! cookie, `state`, the browser, the provider, `iss`, single use) before the code is
//! exchanged; every refusal before the exchange is the contract's error page and changes
//! nothing stored.
use super::{FLOW_TTL_SECONDS, FlowState, Purpose, accounts, callback_uri};
use crate::App;
use crate::crypto::{ct_eq, sha256_b64};
use crate::federation::{Answer, Upstream};
use crate::oauth::account::Notice;
use crate::oauth::authorize::{Outcome, federated};
use crate::oauth::params::Params;
use crate::oauth::sealed;
use crate::oauth::session::{self, SessionCookie};
use std::borrow::Cow;
use time::OffsetDateTime;

/// What the callback's request brings.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    /// The provider id of the path.
    pub provider: &'a str,
    /// The raw query.
    pub query: &'a [u8],
    /// The flow cookie's value.
    pub flow_cookie: Option<&'a str>,
    /// The CSRF cookie, if this server minted it.
    pub csrf_cookie: Option<&'a str>,
    /// The session cookie.
    pub session: Option<&'a SessionCookie>,
}

/// Where the callback leads.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// A sign-in for an authorization request: what the authorization endpoint shows.
    Authorize(Outcome),
    /// An account link: back to the account page, saying how it went.
    Account(Notice),
}

const EXPIRED: &str = "This sign-in has expired or was started in another browser. Start again from the application.";

fn page(text: &'static str) -> CallbackOutcome {
    CallbackOutcome::Authorize(Outcome::ErrorPage(Cow::Borrowed(text)))
}

/// Answer the provider's redirect at `now`.
pub async fn callback(app: &App, cb: Callback<'_>, now: OffsetDateTime) -> CallbackOutcome {
    match checked(app, &cb, now).await {
        Ok((up, flow, params)) => proceed(app, &cb, up, flow, &params, now).await,
        Err(o) => o,
    }
}

/// Every check that needs no upstream call; a refusal here changes nothing stored.
async fn checked<'a>(
    app: &'a App,
    cb: &Callback<'_>,
    now: OffsetDateTime,
) -> Result<(&'a Upstream, FlowState, Params), CallbackOutcome> {
    let Ok(params) = Params::parse(cb.query) else {
        return Err(page(
            "The provider's answer is malformed (or repeats a parameter). Start again from the application.",
        ));
    };
    let up = app.federation.get(cb.provider).ok_or_else(|| page("Unknown sign-in provider."))?;
    let flow: Option<FlowState> = match cb.flow_cookie {
        Some(c) => sealed::open_with_app(app, c, now.unix_timestamp()).await,
        None => None,
    };
    let flow = flow.ok_or_else(|| page(EXPIRED))?;
    let state = params.get("state").unwrap_or_default();
    if !ct_eq(state.as_bytes(), flow.state.as_bytes()) {
        tracing::warn!(event = "federation_refused", provider = %cb.provider, reason = "state", "upstream answer refused");
        return Err(page(
            "This answer does not belong to the sign-in this browser started. Start again from the application.",
        ));
    }
    if !cb.csrf_cookie.is_some_and(|c| ct_eq(sha256_b64(c).as_bytes(), flow.csrf.as_bytes())) {
        return Err(page(EXPIRED));
    }
    // Mix-up (RFC 9700 §4.4): the answer must come back to the provider the flow began with,
    // and say (RFC 9207) it is from that provider.
    let iss_ok = match params.get("iss") {
        Some(iss) => iss == up.config.kind.issuer(),
        None => !app.federation.requires_iss(up),
    };
    if flow.provider != up.config.id || !iss_ok {
        tracing::warn!(event = "federation_refused", provider = %cb.provider, began_with = %flow.provider, reason = "mix-up", "upstream answer refused");
        return Err(page("This answer came from another provider than the one this sign-in was started with."));
    }
    match app.throttle.hit(&format!("form#fed#{}", flow.id), FLOW_TTL_SECONDS + 60, now).await {
        Ok(1) => Ok((up, flow, params)),
        Ok(_) => Err(page("This sign-in was already used. Start again from the application.")),
        Err(e) => {
            tracing::error!(error = %e, "store failed at the federation callback");
            Err(CallbackOutcome::Authorize(Outcome::Unavailable))
        }
    }
}

/// Whether `email`, verified, is in one of `domains`.
fn domain_allowed(domains: &[String], email: Option<&str>, verified: bool) -> bool {
    let domain = email.and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase());
    verified && domain.is_some_and(|d| domains.contains(&d))
}

async fn proceed(
    app: &App,
    cb: &Callback<'_>,
    up: &Upstream,
    flow: FlowState,
    params: &Params,
    now: OffsetDateTime,
) -> CallbackOutcome {
    let name = &up.config.name;
    let refuse = |message: String| async {
        match &flow.purpose {
            Purpose::SignIn { pending } => {
                CallbackOutcome::Authorize(federated::login_again(app, pending, message.into(), 401, now).await)
            }
            Purpose::Link { .. } => CallbackOutcome::Account(Notice::LinkFailed),
        }
    };
    if let Some(error) = params.get("error") {
        tracing::info!(event = "federation_error", provider = %up.config.id, error = %error.chars().take(64).collect::<String>(), "the provider answered an error");
        return refuse(if error == "access_denied" {
            format!("You cancelled signing in with {name}. Sign in with your password, or try again.")
        } else {
            format!("{name} could not sign you in. Try again, or sign in with your password.")
        })
        .await;
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return refuse(format!("{name} sent no sign-in. Try again.")).await;
    };
    let t = now.unix_timestamp();
    let redirect_uri = callback_uri(app, &up.config.id);
    let answer = Answer { code, verifier: &flow.verifier, redirect_uri: &redirect_uri, nonce: &flow.nonce };
    let identity = match app.federation.sign_in(up, answer, t).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(event = "federation_refused", provider = %up.config.id, error = %e, "upstream sign-in refused");
            return refuse(format!("Signing in with {name} did not work. Try again, or sign in with your password."))
                .await;
        }
    };
    if !up.config.allowed_domains.is_empty()
        && !domain_allowed(&up.config.allowed_domains, identity.email.as_deref(), identity.email_verified)
    {
        return refuse(format!("Your {name} account's e-mail address is not one this service accepts.")).await;
    }
    match &flow.purpose {
        Purpose::SignIn { pending } => match accounts::user_for(app, up, &identity, t).await {
            Ok(Some(sub)) => CallbackOutcome::Authorize(
                federated::finish(app, pending, &sub, identity.auth_time, cb.session, now).await,
            ),
            Ok(None) => {
                tracing::info!(event = "federated_sign_up_refused", provider = %up.config.id, "no linked account, and sign-up is off");
                let why = format!(
                    "No account here is connected to that {name} account, and new accounts cannot be created here. Sign in with your password, or ask the administrator."
                );
                CallbackOutcome::Authorize(federated::login_again(app, pending, why.into(), 403, now).await)
            }
            Err(e) => {
                tracing::error!(error = %e, "store failed at the federation callback");
                CallbackOutcome::Authorize(Outcome::Unavailable)
            }
        },
        Purpose::Link { sub, session: id_hash } => {
            // The same signed-in session must have come back (not just any browser).
            let live = match cb.session.filter(|c| c.sub == *sub && c.id_hash == *id_hash) {
                Some(c) => session::find(app, c, None, now).await.ok().flatten().is_some(),
                None => false,
            };
            if !live {
                return CallbackOutcome::Account(Notice::LinkFailed);
            }
            match accounts::link(app, up, sub, &identity, t).await {
                Ok(accounts::LinkOutcome::Linked | accounts::LinkOutcome::AlreadyYours) => {
                    CallbackOutcome::Account(Notice::Linked)
                }
                Ok(accounts::LinkOutcome::TakenByAnother) => CallbackOutcome::Account(Notice::LinkTaken),
                Err(e) => {
                    tracing::error!(error = %e, "store failed linking an identity");
                    CallbackOutcome::Authorize(Outcome::Unavailable)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::domain_allowed;

    #[test]
    fn only_a_verified_address_in_an_allowed_domain_passes() {
        let domains = vec!["example.com".to_owned()];
        assert!(domain_allowed(&domains, Some("a@Example.COM"), true));
        assert!(!domain_allowed(&domains, Some("a@example.com"), false), "unverified");
        assert!(!domain_allowed(&domains, Some("a@evil-example.com"), true));
        assert!(!domain_allowed(&domains, Some("a@example.com.evil"), true));
        assert!(!domain_allowed(&domains, None, true));
    }
}
