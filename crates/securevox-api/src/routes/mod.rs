//! HTTP routes, one file per resource. Each file's `routes()` registers its handlers and their
//! OpenAPI descriptions together, so the document cannot drift from the router.

pub mod admin_capacity;
pub mod admin_invites;
pub mod admin_limits;
pub mod admin_registration;
pub mod admin_users;
pub mod attachments;
pub mod auth;
pub mod calls;
pub mod contacts;
pub mod conversations;
pub mod delivery;
pub mod device_links;
pub mod inbox;
pub mod key_packages;
pub mod keys;
pub mod me;
pub mod ops;
pub mod turn;
pub mod views;
