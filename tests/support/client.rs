//! The test-side HTTP client: requests with a chosen host, method, path, headers and body,
//! over a fresh or a kept-alive connection, HTTP/1.1, h2c or WebSocket.

mod conn;
mod request;
mod websocket;

pub use conn::{Conn, REQUEST_TIMEOUT};
pub use request::{Req, ReqBody, Resp};
pub use websocket::ws_connect;
