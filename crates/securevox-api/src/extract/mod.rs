//! Request extractors that turn bad input into the API's error shape.

mod auth;
mod bearer;
mod client_ip;
mod device;
mod id_path;
mod json;

pub use auth::{AdminUser, AuthUser};
pub use bearer::bearer_token;
pub use client_ip::{client_ip, ClientIp, ClientScheme};
pub use device::{DeviceCaller, DEVICE_HEADER};
pub use id_path::IdPath;
pub use json::{ApiJson, ApiQuery};
