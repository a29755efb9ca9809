//! One module per command.

pub mod audit;
pub mod check;
pub mod config;
pub mod connectors;
pub mod dead_letters;
pub mod demo;
pub mod drift;
pub mod endpoints;
pub mod flows;
pub mod invoke;
pub mod run;
pub mod runs;
pub mod schema;
pub mod secrets;
pub mod spec;
pub mod test;
pub mod token;
