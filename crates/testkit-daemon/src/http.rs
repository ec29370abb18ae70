//! Raw HTTP/1.1 over a daemon's unix socket, for what the docker CLI
//! cannot say (malformed requests, extra headers, exact status codes).
//! One request per connection (`Connection: close`).

use std::io::{self, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A response: status (0 when none could be read), head, body.
pub(crate) struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends one request and reads the whole response (60 s read timeout);
/// fails only when the socket cannot be reached.
pub(crate) fn exchange(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: wharf\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // A server refusing a large body may close before it is all written.
    let _ = s.write_all(req.as_bytes());
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Response {
        status,
        head: head.to_owned(),
        body: rest.to_owned(),
    })
}

/// A raw request with extra headers over the daemon socket `socket`:
/// (status, body).
pub fn http(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let r = exchange(socket, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", socket.display()));
    (r.status, r.body)
}
