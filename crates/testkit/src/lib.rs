//! # ferrograd-testkit
//!
//! Helpers shared by the test suites and benches of the workspace (a dev-dependency only,
//! never published): the reader and checkers of the frozen PyTorch reference files
//! ([`reference`]), the MLP training-step fixture ([`fixture`]), running a function in
//! both graph modes ([`modes`]) and image headers that claim more pixels than they hold
//! ([`images`]).

pub mod fixture;
pub mod images;
pub mod modes;
pub mod reference;
