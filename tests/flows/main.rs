//! End-to-end and integration tests: one binary (faster to link), one module per area.
mod authorize;
mod aws;
mod bad_input;
mod clients;
mod code_grant;
mod conformance;
mod discovery;
mod events;
mod faults;
mod forged_tokens;
mod interop;
mod login;
mod oidc;
mod protected;
mod register;
mod revoke_introspect;
mod token;
