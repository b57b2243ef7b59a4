//! Request extractors that turn bad input into the API's error shape.

mod auth;
mod client_ip;
mod json;

pub use auth::{AdminUser, AuthUser};
pub use client_ip::{client_ip, ClientIp, ClientScheme};
pub use json::{ApiJson, ApiQuery};
