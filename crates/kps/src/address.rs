//! KPS addresses: `<ipv4>:<port>:<certhash>` and `[<ipv6>]:<port>:<certhash>` (spec §1).
//!
//! [`parse_address`] is a pure `&str -> Result` function (a fuzz target is one line). The host
//! must be an IP literal (IPv4 bare, IPv6 only in brackets, no zone ids), the port decimal
//! digits in 1–65535, and the certhash must decode strictly, so a bad address fails before any
//! packet is sent. Formatting brackets IPv6 hosts; `format(parse(s)) == s` for canonical input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::certhash::{Certhash, parse_certhash};
use crate::error::AddressError;
use crate::limits::MAX_ADDRESS_LEN;

/// A KPS dial address: one UDP endpoint and one pinned identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    ip: IpAddr,
    port: u16,
    certhash: Certhash,
}

impl Address {
    /// Builds an address. `port` 0 is refused (nothing can be dialled there).
    pub fn new(ip: IpAddr, port: u16, certhash: Certhash) -> Result<Address, AddressError> {
        if port == 0 {
            return Err(AddressError::Port);
        }
        Ok(Address { ip, port, certhash })
    }

    pub(crate) const fn from_parts(ip: IpAddr, port: u16, certhash: Certhash) -> Address {
        Address { ip, port, certhash }
    }

    /// The server's IP.
    pub const fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The server's UDP port (never 0).
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The UDP endpoint.
    pub const fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// The pinned identity.
    pub const fn certhash(&self) -> Certhash {
        self.certhash
    }
}

/// Parses a KPS address strictly (spec §1).
pub fn parse_address(s: &str) -> Result<Address, AddressError> {
    if s.is_empty() {
        return Err(AddressError::Empty);
    }
    if s.len() > MAX_ADDRESS_LEN {
        return Err(AddressError::TooLong);
    }
    let (ip, rest) = if let Some(after) = s.strip_prefix('[') {
        let end = after.find(']').ok_or(AddressError::Syntax("missing ']'"))?;
        let host = &after[..end];
        let rest = after[end + 1..]
            .strip_prefix(':')
            .ok_or(AddressError::Syntax("']' must be followed by ':'"))?;
        if host.is_empty() {
            return Err(AddressError::Syntax("empty host"));
        }
        let ip = Ipv6Addr::from_str(host).map_err(|_| AddressError::Host)?;
        (IpAddr::V6(ip), rest)
    } else {
        let end = s.find(':').ok_or(AddressError::Syntax("missing ':'"))?;
        let host = &s[..end];
        if host.is_empty() {
            return Err(AddressError::Syntax("empty host"));
        }
        let ip = Ipv4Addr::from_str(host).map_err(|_| AddressError::Host)?;
        (IpAddr::V4(ip), &s[end + 1..])
    };
    let (port, certhash) = rest.split_once(':').ok_or(AddressError::Syntax(
        "missing ':' between port and certhash",
    ))?;
    let port = parse_port(port)?;
    if certhash.is_empty() {
        return Err(AddressError::Syntax("empty certhash"));
    }
    let certhash = parse_certhash(certhash).map_err(AddressError::Certhash)?;
    Ok(Address { ip, port, certhash })
}

/// Decimal digits only, 1–65535.
fn parse_port(s: &str) -> Result<u16, AddressError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::Port);
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => u16::try_from(p).map_err(|_| AddressError::Port),
        _ => Err(AddressError::Port),
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}:{}", self.port, self.certhash),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}:{}", self.port, self.certhash),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_address(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CH: &str = "uEiAREREREREREREREREREREREREREREREREREREREREREQ";

    #[test]
    fn parse_ipv4() {
        let s = format!("203.0.113.5:41108:{CH}");
        let a = parse_address(&s).unwrap();
        assert_eq!(a.ip(), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!(a.port(), 41108);
        assert_eq!(a.certhash(), Certhash::from_digest([0x11; 32]));
        assert_eq!(a.to_string(), s);
    }

    #[test]
    fn parse_ipv6_bracketed() {
        for host in ["2001:db8::1", "::1", "::"] {
            let s = format!("[{host}]:4242:{CH}");
            let a = parse_address(&s).unwrap();
            assert_eq!(a.ip(), IpAddr::V6(host.parse().unwrap()));
            assert_eq!(a.port(), 4242);
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn reject_malformed() {
        // The spec's reject list; `x`/`uEi` certhashes are also rejected by strict decoding.
        for bad in [
            "",
            "1.2.3.4",
            "127.0.0.1:443",
            "127.0.0.1:0:x",
            "127.0.0.1:70000:x",
            "1.2.3.4:99999:uEi",
            "1.2.3.4:0x1bb:uEi",
            "1.2.3.4:1e3:uEi",
            "1.2.3.4: 42 :uEi",
            "[::1]443:x",
            "[::1:443:x",
            "[2001:db8::1]4242:uEi",
            ":443:x",
            "127.0.0.1:443:",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?} accepted");
        }
        // The same shapes with a valid certhash, so the structural check is what rejects.
        for bad in [
            format!("127.0.0.1:0:{CH}"),
            format!("127.0.0.1:65536:{CH}"),
            format!("127.0.0.1:+42:{CH}"),
            format!("127.0.0.1:-42:{CH}"),
            format!("127.0.0.1::{CH}"),
            format!("127.0.0.1: 42:{CH}"),
            format!("127.0.0.1:000042:{CH}"),
            format!("[::1]443:{CH}"),
            format!("[::1:443:{CH}"),
            format!(":443:{CH}"),
            format!("[]:443:{CH}"),
            format!("[1.2.3.4]:443:{CH}"),
            format!("::1:443:{CH}"),
            format!("[fe80::1%eth0]:443:{CH}"),
            format!("localhost:443:{CH}"),
            format!("1.2.3:443:{CH}"),
            format!("01.2.3.4:443:{CH}"),
            format!("1.2.3.4:443:{CH}:extra"),
            format!("1.2.3.4:443:{CH}x"),
            format!("1.2.3.4:443:x{CH}"),
        ] {
            assert!(parse_address(&bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_address(""), Err(AddressError::Empty));
        assert_eq!(
            parse_address(&format!("127.0.0.1:0:{CH}")),
            Err(AddressError::Port)
        );
        assert_eq!(
            parse_address(&format!("localhost:1:{CH}")),
            Err(AddressError::Host)
        );
    }

    #[test]
    fn port_edges() {
        assert_eq!(parse_address(&format!("1.2.3.4:1:{CH}")).unwrap().port(), 1);
        assert_eq!(
            parse_address(&format!("1.2.3.4:65535:{CH}"))
                .unwrap()
                .port(),
            65535
        );
        assert!(
            Address::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                0,
                Certhash::from_digest([0; 32])
            )
            .is_err()
        );
    }

    #[test]
    fn max_address_len_edge() {
        // The longest real address is well below the bound.
        let longest = format!("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535:{CH}");
        assert!(longest.len() <= MAX_ADDRESS_LEN);
        assert!(parse_address(&longest).is_ok());
        let at = format!("{longest}{}", " ".repeat(MAX_ADDRESS_LEN - longest.len()));
        assert_eq!(at.len(), MAX_ADDRESS_LEN);
        assert!(matches!(parse_address(&at), Err(AddressError::Certhash(_))));
        let past = format!("{at} ");
        assert_eq!(parse_address(&past), Err(AddressError::TooLong));
    }

    #[test]
    fn format_round_trip() {
        for s in [
            format!("127.0.0.1:1:{CH}"),
            format!("[2001:db8::1]:4242:{CH}"),
            format!("[::1]:60949:{CH}"),
        ] {
            assert_eq!(parse_address(&s).unwrap().to_string(), s);
        }
    }
}
