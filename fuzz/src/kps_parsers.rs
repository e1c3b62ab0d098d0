//! keyline-kps's parsers of what a user or peer hands over: dial addresses and certhashes.

use keyline_kps::{parse_address, parse_certhash};

/// Input: UTF-8 text (invalid UTF-8 is replaced), parsed as an address and as a certhash.
/// Invariants: no panic; whatever parses prints back to a string that parses to the same
/// value (canonical form round trip).
pub fn kps_parsers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(address) = parse_address(&text) {
        let again = parse_address(&address.to_string()).expect("own output parses");
        assert_eq!(again, address);
    }
    if let Ok(certhash) = parse_certhash(&text) {
        let again = parse_certhash(&certhash.to_string()).expect("own output parses");
        assert_eq!(again, certhash);
    }
}
