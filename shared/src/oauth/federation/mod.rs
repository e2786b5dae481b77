//! Upstream identity federation: this server as an OpenID Connect relying party toward
//! upstream providers, while it stays the issuer of every token its clients see. So far the
//! ID-token validation ([`id_token`]); the sign-in flow, the provider configuration and the
//! identity links are still to come.
pub mod id_token;
