//! # regwatch-checks
//!
//! The security checks every regwatch crate makes, each written once.
//! Copies drift: before this crate the loopback test existed five times
//! (two by string prefix, which took `http://0x7f000001/` for a remote
//! host) and the invisible-character list twice (one missing U+3164).
//! Each function here is the strongest of the variants it replaced.
//!
//! Pure: no IO, no clock, no async, no allocation on the hot paths.
//!
//! ## Layout
//!
//! - [`addr`]: IP addresses and URL hosts. [`addr::ip_scope`] sorts an
//!   address into loopback, internal (every special-purpose block, IPv6
//!   forms judged by the IPv4 address they embed) or global;
//!   [`addr::host_loopback`] and [`addr::is_loopback_http`] say whether a
//!   parsed host or a redirect URI reaches this machine, whatever textual
//!   form the URL parser normalized (`0x7f000001`, `127.1`, `[::ffff:7f00:1]`).
//! - [`text`]: the one list of invisible (Default_Ignorable) and bidi
//!   control characters.
//! - [`json`]: the nesting-depth scan run before any JSON parse.
//! - [`bearer`]: the `Authorization: Bearer` parser (RFC 6750 §2.1,
//!   case-insensitive scheme per RFC 9110 §11.1) and the token syntax that
//!   configured credentials are validated against.

pub mod addr;
pub mod bearer;
pub mod json;
pub mod text;
