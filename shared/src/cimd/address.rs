//! Which addresses a metadata document may be fetched from: none that is special-use
//! (RFC 6890 and its successors' registries), so a `client_id` cannot make this server
//! reach its own network, a cloud metadata endpoint or itself.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is loopback, private, link-local, shared, documentation, benchmarking,
/// multicast, reserved, unspecified, or a special-use IPv6 block. IPv4-mapped addresses are
/// judged by the IPv4 address they carry; the NAT64 prefixes (64:ff9b::/96 and the local-use
/// /48) are refused outright.
pub fn is_special_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_special(v4),
        IpAddr::V6(v6) => v6_special(v6),
    }
}

fn v4_special(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // 0.0.0.0/8 "this network"
        || a == 10                           // 10/8 private
        || (a == 100 && (64..=127).contains(&b)) // 100.64/10 shared (CGN)
        || a == 127                          // loopback
        || (a == 169 && b == 254)            // link-local, cloud metadata
        || (a == 172 && (16..=31).contains(&b)) // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)    // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast
        || (a == 192 && b == 168)            // private
        || (a == 198 && (18..=19).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn v6_special(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_special(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] == 0x64 && s[1] == 0xff9b)            // 64:ff9b::/96 and /48 translation
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // 100::/64 discard
        || (s[0] == 0x2001 && s[1] < 0x0200)           // 2001::/23 IETF protocol assignments (Teredo, ORCHID, ...)
        || (s[0] == 0x2001 && s[1] == 0x0db8)          // documentation
        || s[0] == 0x2002                              // 6to4
        || (s[0] & 0xfe00) == 0xfc00                   // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80                   // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0                   // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00                   // multicast
        || s[0] == 0 // the rest of ::/16 (IPv4-compatible and reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses_are_refused_and_public_ones_allowed() {
        let special = [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.5",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:c000:204::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::127.0.0.1",
        ];
        for ip in special {
            let parsed: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert!(is_special_use(parsed), "{ip} must be refused");
        }
        let public =
            ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:93.184.216.34"];
        for ip in public {
            let parsed: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert!(!is_special_use(parsed), "{ip} is public");
        }
    }
}
