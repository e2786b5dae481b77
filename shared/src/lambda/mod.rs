//! What only runs on AWS Lambda: the HTTP functions' entry point (API Gateway events in and
//! out, with the event guard in front of `lambda_http`'s conversion), the authorizer's
//! events, and the steps of the Secrets Manager key rotation. The local server never links
//! the Lambda runtime's event loop; everything these call is in the rest of the crate.
pub mod authorizer;
pub mod http;
pub mod rotation;
