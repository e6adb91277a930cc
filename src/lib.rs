pub mod bench;
pub mod import;
pub mod store;
