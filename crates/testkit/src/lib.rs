//! # ferrograd-testkit
//!
//! Helpers shared by the test suites and benches of the workspace (a dev-dependency only,
//! never published): the reader and checkers of the frozen PyTorch reference files
//! ([`reference`]) and the MLP training-step fixture ([`fixture`]).

pub mod fixture;
pub mod reference;
