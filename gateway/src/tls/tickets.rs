//! Session tickets: rustls's [`ProducesTickets`] over a key list that can be swapped whole (a
//! reload of the key files, the keys an upgrade hands over). The first key encrypts; every key
//! decrypts, so tickets issued under a key rotated into second place still resume.
//!
//! A ticket is `key name (16) | nonce (12) | AES-256-GCM(issued_at (8, big-endian seconds) |
//! rustls's session state)` with the key name as associated data. The age is checked here:
//! rustls keeps no lifetime of its own on the server side, and a key file can outlive many
//! lifetimes. Generated keys (no key files) are also rolled: a new one every lifetime, the
//! previous one kept for decryption only, older ones erased (forward secrecy beyond that).
//! No I/O: the clock is passed in, the keys come from [`super::ticket_keys`].

use arc_swap::ArcSwap;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use std::sync::Arc;

/// A key's name: the first 16 bytes of its material, written in every ticket it encrypts.
pub type KeyName = [u8; 16];

const NAME_LEN: usize = 16;
const ISSUED_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// Larger tickets are not ours (rustls's state is a few hundred bytes).
const MAX_TICKET: usize = 16 * 1024;

/// One ticket key: its name and the AEAD key derived from its material.
pub struct TicketKey {
    pub name: KeyName,
    key: LessSafeKey,
    /// The material it was made from (kept to hand generated keys over on upgrade).
    material: Vec<u8>,
    /// When it started encrypting (seconds since the epoch), for the roll of generated keys.
    pub since: u64,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKey")
            .field("name", &super::ticket_keys::hex(&self.name))
            .field("since", &self.since)
            .finish()
    }
}

impl TicketKey {
    /// From key material: 16 bytes of name, then the secret the AEAD key is derived from
    /// (HKDF-SHA256). `None` when it is shorter than 48 bytes.
    pub fn from_material(material: &[u8], since: u64) -> Option<TicketKey> {
        if material.len() < NAME_LEN + 32 {
            return None;
        }
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(&material[..NAME_LEN]);
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"dyegate session ticket key");
        let prk = salt.extract(&material[NAME_LEN..]);
        let okm = prk.expand(&[b"aes-256-gcm"], &AES_256_GCM).ok()?;
        let key = LessSafeKey::new(UnboundKey::from(okm));
        Some(TicketKey {
            name,
            key,
            material: material.to_vec(),
            since,
        })
    }

    pub fn material(&self) -> &[u8] {
        &self.material
    }
}

/// The keys in use, the encrypting one first.
#[derive(Debug, Default)]
pub struct TicketKeys {
    pub keys: Vec<TicketKey>,
    /// Made by the process (no key files): rolled every lifetime.
    pub generated: bool,
}

/// Seconds since the epoch, as the ticketer reads the time.
pub type Clock = fn() -> u64;

fn system_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// rustls's ticketer for every HTTPS listener of the process.
#[derive(Debug)]
pub struct Ticketer {
    keys: ArcSwap<TicketKeys>,
    lifetime: u32,
    enabled: bool,
    clock: Clock,
    rng: SystemRandom,
}

impl Ticketer {
    pub fn new(keys: TicketKeys, lifetime_s: u32, enabled: bool) -> Ticketer {
        Ticketer::with_clock(keys, lifetime_s, enabled, system_clock)
    }

    pub fn with_clock(keys: TicketKeys, lifetime_s: u32, enabled: bool, clock: Clock) -> Ticketer {
        Ticketer {
            keys: ArcSwap::from_pointee(keys),
            lifetime: lifetime_s,
            enabled,
            clock,
            rng: SystemRandom::new(),
        }
    }

    /// Serves `keys` from the next handshake on (a reload, or the keys handed over).
    pub fn swap(&self, keys: TicketKeys) {
        self.keys.store(Arc::new(keys));
    }

    pub fn keys(&self) -> Arc<TicketKeys> {
        self.keys.load_full()
    }

    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// For generated keys: a new encrypting key when the current one is a lifetime old; the
    /// previous stays for decryption (its tickets live at most one lifetime more), older ones
    /// are dropped.
    pub fn roll_if_due(&self) {
        let keys = self.keys.load();
        let now = self.now();
        let due = keys.generated
            && keys
                .keys
                .first()
                .is_none_or(|k| now.saturating_sub(k.since) >= u64::from(self.lifetime));
        if !due {
            return;
        }
        let mut material = [0u8; 80];
        if self.rng.fill(&mut material).is_err() {
            return;
        }
        let Some(new) = TicketKey::from_material(&material, now) else {
            return;
        };
        let mut list = vec![new];
        list.extend(
            (keys.keys.first()).and_then(|k| TicketKey::from_material(&k.material, k.since)),
        );
        self.swap(TicketKeys {
            keys: list,
            generated: true,
        });
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.roll_if_due();
        let keys = self.keys.load();
        let key = keys.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut sealed = Vec::with_capacity(ISSUED_LEN + plain.len() + TAG_LEN);
        sealed.extend_from_slice(&self.now().to_be_bytes());
        sealed.extend_from_slice(plain);
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&key.name),
                &mut sealed,
            )
            .ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + sealed.len());
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < NAME_LEN + NONCE_LEN + ISSUED_LEN + TAG_LEN || ticket.len() > MAX_TICKET {
            return None;
        }
        let (name, rest) = ticket.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let keys = self.keys.load();
        let key = keys.keys.iter().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&key.name), &mut buf)
            .ok()?;
        let (issued, state) = plain.split_at(ISSUED_LEN);
        let issued = u64::from_be_bytes(issued.try_into().ok()?);
        let now = self.now();
        // A ticket from the future is one clock step away at most (a fleet's clocks).
        let fresh = now.saturating_sub(issued) <= u64::from(self.lifetime)
            && issued <= now.saturating_add(60);
        fresh.then(|| state.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static NOW: AtomicU64 = AtomicU64::new(1_000_000);
    fn clock() -> u64 {
        NOW.load(Ordering::SeqCst)
    }

    fn key(byte: u8) -> TicketKey {
        TicketKey::from_material(&[byte; 80], 0).expect("a key")
    }

    fn keys(list: Vec<TicketKey>) -> TicketKeys {
        TicketKeys {
            keys: list,
            generated: false,
        }
    }

    #[test]
    fn the_first_key_encrypts_and_every_key_decrypts() {
        let t = Ticketer::with_clock(keys(vec![key(1), key(2)]), 3600, true, clock);
        let ticket = t.encrypt(b"session state").expect("a ticket");
        assert_eq!(&ticket[..16], &[1u8; 16]);
        assert_eq!(t.decrypt(&ticket).as_deref(), Some(&b"session state"[..]));

        // Rotated: a new key first, the old one second: old tickets still resume, new ones
        // are encrypted under the new key.
        t.swap(keys(vec![key(3), key(1)]));
        assert_eq!(t.decrypt(&ticket).as_deref(), Some(&b"session state"[..]));
        assert_eq!(&t.encrypt(b"x").expect("a ticket")[..16], &[3u8; 16]);
        // The old key removed: its tickets are full handshakes again.
        t.swap(keys(vec![key(3)]));
        assert_eq!(t.decrypt(&ticket), None);
    }

    #[test]
    fn tickets_expire_after_the_lifetime_and_tampered_ones_never_decrypt() {
        let t = Ticketer::with_clock(keys(vec![key(7)]), 100, true, clock);
        let ticket = t.encrypt(b"state").expect("a ticket");
        let start = clock();
        NOW.store(start + 100, Ordering::SeqCst);
        assert!(t.decrypt(&ticket).is_some(), "valid for its whole lifetime");
        NOW.store(start + 101, Ordering::SeqCst);
        assert_eq!(t.decrypt(&ticket), None, "expired");
        NOW.store(start, Ordering::SeqCst);
        for i in [0, 16, 30, ticket.len() - 1] {
            let mut bad = ticket.clone();
            bad[i] ^= 1;
            assert_eq!(t.decrypt(&bad), None, "byte {i} flipped");
        }
        assert_eq!(t.decrypt(&ticket[..40]), None);
        assert_eq!(t.decrypt(&[]), None);
        // Another gateway with the same key file decrypts; one with another key does not.
        let same = Ticketer::with_clock(keys(vec![key(7)]), 100, true, clock);
        assert!(same.decrypt(&ticket).is_some());
        let other = Ticketer::with_clock(keys(vec![key(8)]), 100, true, clock);
        assert_eq!(other.decrypt(&ticket), None);
    }

    #[test]
    fn generated_keys_roll_every_lifetime_and_keep_one_previous() {
        static GEN_NOW: AtomicU64 = AtomicU64::new(5_000);
        fn gen_clock() -> u64 {
            GEN_NOW.load(Ordering::SeqCst)
        }
        let first = TicketKey::from_material(&[9u8; 80], 5_000).expect("a key");
        let t = Ticketer::with_clock(
            TicketKeys {
                keys: vec![first],
                generated: true,
            },
            100,
            true,
            gen_clock,
        );
        let old = t.encrypt(b"a").expect("a ticket");
        assert_eq!(&old[..16], &[9u8; 16]);
        GEN_NOW.store(5_100, Ordering::SeqCst);
        let new = t.encrypt(b"b").expect("a ticket");
        assert_ne!(&new[..16], &[9u8; 16], "a new key encrypts");
        assert_eq!(t.keys().keys.len(), 2);
        assert!(t.decrypt(&old).is_some(), "the previous key still decrypts");
        GEN_NOW.store(5_200, Ordering::SeqCst);
        t.roll_if_due();
        assert_eq!(t.keys().keys.len(), 2);
        assert!(!t.keys().keys.iter().any(|k| k.name == [9u8; 16]), "erased");
    }
}
