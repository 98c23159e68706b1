//! The demo data set.
