//! Session ticket keys a process made itself (no `tls.session_tickets.key_files`), handed to
//! the next process so that sessions resume across an upgrade.

use super::format::TicketKeyRecord;
use crate::tls::ticket_keys::hex;
use crate::tls::tickets::{TicketKey, TicketKeys};
use crate::tls::Certificates;
use log::{info, warn};

/// The keys `certificates` made itself (none when they come from key files).
pub fn export(certificates: Option<&Certificates>) -> Vec<TicketKeyRecord> {
    let Some(certs) = certificates else {
        return Vec::new();
    };
    let keys = certs.tickets().keys();
    if !keys.generated {
        return Vec::new();
    }
    (keys.keys.iter())
        .map(|k| TicketKeyRecord {
            material: hex(k.material()),
            since: k.since,
        })
        .collect()
}

/// The old process's made keys, unless this one reads key files (those rule).
pub fn restore(certificates: Option<&Certificates>, records: &[TicketKeyRecord]) {
    let Some(certs) = certificates else {
        return;
    };
    let tickets = certs.tickets();
    if records.is_empty() || !tickets.keys().generated {
        return;
    }
    let keys: Vec<TicketKey> = (records.iter())
        .filter_map(|r| TicketKey::from_material(&unhex(&r.material)?, r.since))
        .collect();
    if keys.len() == records.len() {
        info!("handover: {} session ticket key(s) taken over", keys.len());
        tickets.swap(TicketKeys {
            keys,
            generated: true,
        });
    } else {
        warn!("handover: session ticket keys unreadable; new ones made, sessions from before the upgrade make full handshakes");
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_reads_back() {
        let bytes = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(
            super::unhex(&crate::tls::ticket_keys::hex(&bytes)),
            Some(bytes)
        );
        assert_eq!(super::unhex("abc"), None);
        assert_eq!(super::unhex("zz"), None);
    }
}
