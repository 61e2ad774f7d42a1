//! Email: templates, transports and the mailer that delivers the outbox. Messages are written
//! to the outbox by the engine and the lifecycle operations, in the same transaction as the
//! change that caused them; nothing here decides what to send, only how and when.

mod body;
pub mod hooks;
pub mod mailer;
pub mod smtp;
pub mod templates;
pub mod transport;
