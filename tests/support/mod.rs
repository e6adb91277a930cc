//! Loopback fakes of the services chatkeeper talks to, for tests and benchmarks: nothing here
//! reaches the internet.
#![allow(dead_code)]

pub mod fake_llm;
pub mod fake_telegram;
