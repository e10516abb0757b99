//! Rebuilds the store when a migration is added: `sqlx::migrate!` embeds the migration
//! directories at compile time, and cargo does not watch a directory's new files by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
