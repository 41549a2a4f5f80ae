//! Helpers for the end-to-end tests: run a real program natively and under
//! `umview`, and compare.
