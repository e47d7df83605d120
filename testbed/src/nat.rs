//! A node behind NAT: the node runs in a host namespace whose only way out is a veth pair
//! to a gateway namespace; the gateway holds the node's link to the router (its TUN device,
//! its public address 10.99.x.y), forwards, masquerades what leaves (nftables) and lets in
//! only what belongs to a connection opened from inside — no inbound connections, as a home
//! or office router. The node listens on its private address (192.168.i.2), which no other
//! namespace can route to; it is reachable only through a relay, or directly once a hole
//! is punched.

use std::net::Ipv4Addr;

use crate::{
    TestbedError,
    netns::{Namespace, ip, run, run_with_input},
};

/// The host's end of the veth pair (in the host namespace).
const HOST_DEV: &str = "gmh0";
/// The gateway's end.
const GATEWAY_DEV: &str = "gmg0";

/// Node `i`'s private address behind its NAT (192.168.i.2; at most 250 nodes).
pub fn host_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, u8::try_from(i).unwrap_or(u8::MAX), 2)
}

/// The gateway's address on the private side (the host's default route).
fn gateway_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, u8::try_from(i).unwrap_or(u8::MAX), 1)
}

/// The gateway's rules: masquerade what leaves by `outward`, forward what the host opened
/// and its replies, drop every other forwarded packet (nothing unsolicited gets in), and drop
/// what is addressed to the gateway itself from outside, as home routers do (silently,
/// rather than answering with ICMP port unreachable; a dropped packet also leaves no
/// confirmed conntrack entry that could push a later mapping of ours to another port).
fn ruleset(outward: &str) -> String {
    format!(
        "table ip gmnat {{\n\
         \tchain gm_out {{ type nat hook postrouting priority srcnat; oifname \"{outward}\" masquerade; }}\n\
         \tchain gm_through {{ type filter hook forward priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiifname \"{GATEWAY_DEV}\" oifname \"{outward}\" accept\n\
         \t}}\n\
         \tchain gm_in {{ type filter hook input priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiifname {{ \"lo\", \"{GATEWAY_DEV}\" }} accept\n\
         \t}}\n\
         }}\n"
    )
}

/// Puts node `i`'s `host` namespace behind `gateway`, whose device `outward` leads to the
/// rest of the testbed: a veth pair between them, the private /24, the host's default
/// route, forwarding and the NAT rules in the gateway. Returns the host's address.
pub fn put_behind(
    host: &Namespace,
    gateway: &Namespace,
    i: usize,
    outward: &str,
) -> Result<Ipv4Addr, TestbedError> {
    if i >= 250 {
        return Err(TestbedError::Router(format!(
            "node {i}: at most 250 nodes can be behind NAT"
        )));
    }
    let (h, g) = (host.name(), gateway.name());
    let (ha, ga) = (host_address(i), gateway_address(i));
    ip(&[
        "-n",
        h,
        "link",
        "add",
        HOST_DEV,
        "type",
        "veth",
        "peer",
        "name",
        GATEWAY_DEV,
        "netns",
        g,
    ])?;
    ip(&["-n", h, "addr", "add", &format!("{ha}/24"), "dev", HOST_DEV])?;
    ip(&["-n", h, "link", "set", HOST_DEV, "up"])?;
    ip(&[
        "-n",
        g,
        "addr",
        "add",
        &format!("{ga}/24"),
        "dev",
        GATEWAY_DEV,
    ])?;
    ip(&["-n", g, "link", "set", GATEWAY_DEV, "up"])?;
    ip(&["-n", h, "route", "add", "default", "via", &ga.to_string()])?;
    run(
        "ip",
        &[
            "netns",
            "exec",
            g,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ],
    )?;
    run_with_input(
        "ip",
        &["netns", "exec", g, "nft", "-f", "-"],
        Some(&ruleset(outward)),
    )?;
    Ok(ha)
}

#[cfg(test)]
mod tests {
    use std::{net::UdpSocket, time::Duration};

    use super::*;
    use crate::netns::{PREFIX, check};

    #[test]
    fn the_ruleset_masquerades_out_and_drops_unsolicited_in() {
        let r = ruleset("gm0");
        assert!(r.contains("oifname \"gm0\" masquerade"));
        assert!(r.contains("policy drop"));
        assert!(r.contains("ct state established,related accept"));
        assert!(r.contains("hook input priority filter; policy drop"));
    }

    /// Host → outside works and the outside sees the gateway's address (masqueraded); the
    /// outside's reply comes back; the outside cannot open anything towards the host.
    #[test]
    fn a_host_behind_nat_reaches_out_and_cannot_be_reached() {
        if let Err(e) = check() {
            eprintln!("SKIPPED: needs root and network namespaces: {e}");
            return;
        }
        if let Err(e) = run("nft", &["--version"]) {
            eprintln!("SKIPPED: nftables is not installed: {e}");
            return;
        }
        // "probe" in the names: the e2e test that counts testbed namespaces ignores them.
        let id = std::process::id();
        let ns = |s: &str| Namespace::create(&format!("{PREFIX}-probe-nat{s}-{id}")).unwrap();
        let (host, gw, outside) = (ns("h"), ns("g"), ns("o"));
        let result = (|| -> Result<(), Box<dyn std::error::Error>> {
            // gateway ⇄ outside: 10.99.0.1 / 10.99.0.2 on a veth standing in for the router.
            ip(&[
                "-n",
                gw.name(),
                "link",
                "add",
                "gmo0",
                "type",
                "veth",
                "peer",
                "name",
                "gmo1",
                "netns",
                outside.name(),
            ])?;
            for (n, dev, a) in [
                (&gw, "gmo0", "10.99.0.1/16"),
                (&outside, "gmo1", "10.99.0.2/16"),
            ] {
                ip(&["-n", n.name(), "addr", "add", a, "dev", dev])?;
                ip(&["-n", n.name(), "link", "set", dev, "up"])?;
            }
            let private = put_behind(&host, &gw, 7, "gmo0")?;
            assert_eq!(private, Ipv4Addr::new(192, 168, 7, 2));
            let server = outside.enter(|| UdpSocket::bind("10.99.0.2:9000"))??;
            server.set_read_timeout(Some(Duration::from_secs(2)))?;
            let client = host.enter(move || UdpSocket::bind((private, 4001)))??;
            client.set_read_timeout(Some(Duration::from_secs(2)))?;
            client.send_to(b"out", "10.99.0.2:9000")?;
            let mut buf = [0u8; 16];
            let (n, from) = server.recv_from(&mut buf)?;
            assert_eq!(&buf[..n], b"out");
            assert_eq!(from.ip().to_string(), "10.99.0.1", "masqueraded");
            server.send_to(b"back", from)?;
            let (n, _) = client.recv_from(&mut buf)?;
            assert_eq!(&buf[..n], b"back", "the reply comes back");
            // Unsolicited: another port of the outside sending to the very mapping the host
            // opened gets nothing through (the mapping filters by address and port, which
            // is why hole punching needs both sides to send).
            let stranger = outside.enter(|| UdpSocket::bind("10.99.0.2:9001"))??;
            stranger.send_to(b"in", from)?;
            client.set_read_timeout(Some(Duration::from_millis(500)))?;
            assert!(client.recv_from(&mut buf).is_err(), "nothing gets in");
            Ok(())
        })();
        for n in [&host, &gw, &outside] {
            n.delete().unwrap();
        }
        result.unwrap();
    }
}
