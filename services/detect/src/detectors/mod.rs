//! The detectors' pure parts. Each takes what it needs as arguments and
//! returns findings; [`crate::engine::Detector`] turns findings into alerts.

pub mod burst;
pub mod drift;
pub mod impersonation;
pub mod scope;
