//! Shared test support: the store conformance suite (generic over the store traits, so
//! every backend runs the same cases) and the end-to-end harness around the local server.
pub mod aws;
pub mod conformance;
pub mod docserver;
pub mod dpop;
pub mod faults;
pub mod harness;
pub mod upstream;
