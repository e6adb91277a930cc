pub mod bench;
pub mod store;
