//! One module per step kind. Each takes the running step ([`super::step::StepRun`]) and the
//! kind's settings, reports notes as it goes, and returns its [`super::step::StepOutcome`].

pub(crate) mod artifacts;
pub(crate) mod cache;
pub(crate) mod checkout;
pub(crate) mod deploy;
pub(crate) mod script;
pub(crate) mod test_results;
