//! `_dlt_id` values: random-looking ids for root rows and dlt's
//! deterministic ids for child rows.
//!
//! dlt derives a child row's id from SHAKE-128. Through the `sha3` crate's
//! reader one id cost two Keccak permutations (the reader squeezes a whole
//! block ahead), which made hashing a quarter of normalizing at nesting 2.
//! Ten bytes of output need only the first squeeze, so the sponge here is
//! written out over `keccak::f1600`: one permutation per id (more only for
//! messages over 167 bytes).

use base64::Engine as _;

/// SHAKE-128's rate in bytes: how much input one permutation absorbs.
const RATE: usize = 168;

/// The first 10 bytes of SHAKE-128 over the concatenation of `parts`.
fn shake128_10(parts: &[&[u8]]) -> [u8; 10] {
    let mut state = [0u64; 25];
    let mut block = [0u8; RATE];
    let mut filled = 0;
    for part in parts {
        for &byte in *part {
            block[filled] = byte;
            filled += 1;
            if filled == RATE {
                absorb(&mut state, &block);
                block = [0u8; RATE];
                filled = 0;
            }
        }
    }
    // SHAKE's domain bits and pad10*1 (the two can share a byte).
    block[filled] ^= 0x1F;
    block[RATE - 1] ^= 0x80;
    absorb(&mut state, &block);
    let mut out = [0u8; 10];
    out[..8].copy_from_slice(&state[0].to_le_bytes());
    out[8..].copy_from_slice(&state[1].to_le_bytes()[..2]);
    out
}

fn absorb(state: &mut [u64; 25], block: &[u8; RATE]) {
    for (lane, bytes) in state.iter_mut().zip(block.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        *lane ^= u64::from_le_bytes(word);
    }
    keccak::f1600(state);
}

/// dlt's deterministic child row id: base64 (no padding) of the first 10
/// bytes of SHAKE-128 over `"{parent_id}_{table}_{idx}"`.
pub fn child_row_id(parent_id: &str, table: &str, idx: usize) -> String {
    let mut digits = itoa::Buffer::new();
    let hash = shake128_10(&[parent_id.as_bytes(), b"_", table.as_bytes(), b"_", digits.format(idx).as_bytes()]);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
}

/// Root row ids of one load: 10 pseudo-random bytes per row (dlt uses
/// random bytes too), base64 without padding. Seeded from the load id, so
/// ids are unique within a load and differ between loads, at a fraction of
/// the cost of hashing every row.
#[derive(Debug, Clone, Copy)]
pub struct RootIds {
    seed: u64,
}

impl RootIds {
    /// The ids of load `load_id`.
    pub fn new(load_id: &str) -> Self {
        let hash = shake128_10(&[load_id.as_bytes()]);
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&hash[..8]);
        RootIds { seed: u64::from_le_bytes(seed) }
    }

    /// The id of root row number `row`.
    pub fn id(&self, row: u64) -> String {
        let mut x = self.seed.wrapping_add(row.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_mut(8) {
            // splitmix64
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes[..10])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha3::Shake128;
    use sha3::digest::{ExtendableOutput, Update, XofReader};

    fn reference(message: &[u8]) -> [u8; 10] {
        let mut h = Shake128::default();
        h.update(message);
        let mut out = [0u8; 10];
        h.finalize_xof().read(&mut out);
        out
    }

    #[test]
    fn matches_the_sha3_crate_for_every_length_around_the_rate() {
        for len in (0..400).chain([RATE * 3 - 1, RATE * 3, RATE * 3 + 1]) {
            let message: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let (a, b) = message.split_at(len / 3);
            assert_eq!(shake128_10(&[a, b]), reference(&message), "length {len}");
        }
    }

    #[test]
    fn child_id_hashes_parent_table_and_index() {
        let id = child_row_id("4X2k0m9Mc+HOXw", "items__tags", 1);
        assert_eq!(id.len(), 14);
        let message = b"4X2k0m9Mc+HOXw_items__tags_1";
        let expected = base64::engine::general_purpose::STANDARD_NO_PAD.encode(reference(message));
        assert_eq!(id, expected);
    }

    #[test]
    fn root_ids_differ_by_row_and_load() {
        let a = RootIds::new("1700000000.1");
        let b = RootIds::new("1700000000.2");
        let ids: std::collections::HashSet<String> = (0..10_000).map(|r| a.id(r)).collect();
        assert_eq!(ids.len(), 10_000);
        assert_ne!(a.id(1), b.id(1));
        assert_eq!(a.id(7), RootIds::new("1700000000.1").id(7));
    }
}
