//! Helpers shared by the integration tests. Each test file includes this module with `mod support;`.
#![allow(dead_code, missing_docs)]

pub mod broker;
pub mod browser;
pub mod cloud_controller;
pub mod cluster;
pub mod dashboard;
pub mod dex;
pub mod http;
pub mod process;
pub mod proxy;
pub mod real_node;
