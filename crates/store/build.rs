//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the
//! migration files at compile time but only tracks the files it saw.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
