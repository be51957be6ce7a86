//! `X-Dyegate-Signature: t=UNIX,v1=HEX`: HEX is the HMAC-SHA256, keyed with the secret, of
//! `UNIX.BODY` — the time is signed with the body, so that a receiver can refuse a replay.

use ring::hmac;

pub const HEADER: &str = "x-dyegate-signature";

/// The header's value for `body` sent at `unix` (seconds).
pub fn signature(secret: &[u8], unix: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(unix.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix},v1={hex}")
}

/// The secret in a file: its bytes without a final line break (as `echo` writes it).
pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_time_dot_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?" — here the data
        // is "1700000000." followed by the body, checked against the same HMAC computed whole.
        let body = b"{\"a\":1}";
        let s = signature(b"Jefe", 1_700_000_000, body);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let whole = hmac::sign(&key, b"1700000000.{\"a\":1}");
        let hex: String = whole.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(s, format!("t=1700000000,v1={hex}"));
        assert_eq!(hex.len(), 64);
        let rfc = hmac::sign(&key, b"what do ya want for nothing?");
        let rfc: String = rfc.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            rfc,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
