//! Refused peers stay out: a peer that failed admission is banned, by PeerId and by the
//! addresses it connected from, for a period that doubles with each refusal (30 s, 1 min, …,
//! 1 h). While banned, its connections are denied when they are established — before any
//! other behaviour (kad, identify, gossipsub) sees them — and dials to it are not made, so a
//! refused outsider that redials in a loop is never connected again until the ban ends. The
//! durations are [`gaiamesh_core::AdmissionParams`]: a peer that did not finish admission in
//! time may be a member on a bad link, so its first ban is shorter.
//!
//! The gate is the first field of [`super::behaviour::Behaviour`], so its verdict comes first.
//! [`BanList`] is the decision, with time passed in; [`Gate`] is the libp2p driver around it.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::IpAddr,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, multiaddr::Protocol, transport::PortUse},
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm, dummy,
    },
};
use prometheus_client::metrics::counter::Counter;

/// A banned peer or address is forgotten this long after its ban ended (its next refusal
/// starts from the first ban again).
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most peers and most addresses remembered (each); beyond, the ones whose ban ends first go.
const MAX_ENTRIES: usize = 4096;

/// A remote address as it identifies a sender: IP, transport and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RemoteAddr {
    ip: IpAddr,
    udp: bool,
    port: u16,
}

impl RemoteAddr {
    /// The IP and TCP or UDP port of `addr`, if it has both.
    pub(crate) fn of(addr: &Multiaddr) -> Option<Self> {
        let mut ip = None;
        for p in addr.iter() {
            match p {
                Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
                Protocol::Ip6(a) => ip = Some(IpAddr::V6(a)),
                Protocol::Tcp(port) => {
                    return ip.map(|ip| Self {
                        ip,
                        udp: false,
                        port,
                    });
                }
                Protocol::Udp(port) => {
                    return ip.map(|ip| Self {
                        ip,
                        udp: true,
                        port,
                    });
                }
                _ => {}
            }
        }
        None
    }
}

#[derive(Clone, Copy, Debug)]
struct Ban {
    until: Instant,
    strikes: u32,
}

/// Who is banned until when.
#[derive(Debug)]
pub(crate) struct BanList {
    peers: HashMap<PeerId, Ban>,
    addrs: HashMap<RemoteAddr, Ban>,
    /// The longest ban.
    max: Duration,
}

impl BanList {
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            peers: HashMap::new(),
            addrs: HashMap::new(),
            max,
        }
    }

    /// Bans `peer` and `addrs` (where it connected from), for `base` doubled per earlier
    /// refusal; returns how long.
    pub(crate) fn ban(
        &mut self,
        peer: PeerId,
        addrs: &[RemoteAddr],
        base: Duration,
        now: Instant,
    ) -> Duration {
        let d = strike(&mut self.peers, peer, base, self.max, now);
        for a in addrs {
            strike(&mut self.addrs, *a, base, self.max, now);
        }
        d
    }

    /// Whether `peer` is banned at `now`.
    pub(crate) fn peer_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers.get(peer).is_some_and(|b| b.until > now)
    }

    /// Whether `addr` is banned at `now`.
    pub(crate) fn addr_banned(&self, addr: &RemoteAddr, now: Instant) -> bool {
        self.addrs.get(addr).is_some_and(|b| b.until > now)
    }

    /// Lifts the ban of `peer` (it was admitted after all, e.g. over another connection).
    pub(crate) fn lift(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Peers banned now.
    #[cfg(test)]
    fn banned_peers(&self, now: Instant) -> usize {
        self.peers.values().filter(|b| b.until > now).count()
    }
}

fn strike<K: Eq + std::hash::Hash + Copy>(
    map: &mut HashMap<K, Ban>,
    key: K,
    base: Duration,
    max: Duration,
    now: Instant,
) -> Duration {
    map.retain(|_, b| b.until + FORGET_AFTER > now);
    if map.len() >= MAX_ENTRIES
        && !map.contains_key(&key)
        && let Some(first) = map.iter().min_by_key(|(_, b)| b.until).map(|(k, _)| *k)
    {
        map.remove(&first);
    }
    let strikes = map.get(&key).map_or(0, |b| b.strikes) + 1;
    let d = base.saturating_mul(1u32 << (strikes - 1).min(16)).min(max);
    map.insert(
        key,
        Ban {
            until: now + d,
            strikes,
        },
    );
    d
}

/// The libp2p side: denies connections of banned peers and addresses.
pub(crate) struct Gate {
    bans: BanList,
    params: gaiamesh_core::AdmissionParams,
    /// Remote addresses of every established connection, to ban a peer's addresses with it.
    remotes: HashMap<ConnectionId, (PeerId, RemoteAddr)>,
    denied: Counter,
}

impl Gate {
    pub(crate) fn new(denied: Counter, params: gaiamesh_core::AdmissionParams) -> Self {
        Self {
            bans: BanList::new(params.max_ban),
            params,
            remotes: HashMap::new(),
            denied,
        }
    }

    /// Bans `peer`, whose credential was refused, and the addresses it is connected from
    /// now; returns how long.
    pub(crate) fn ban_refused(&mut self, peer: PeerId) -> Duration {
        self.ban(peer, self.params.refused_ban)
    }

    /// Bans `peer`, which did not finish admission in time.
    pub(crate) fn ban_late(&mut self, peer: PeerId) -> Duration {
        self.ban(peer, self.params.timeout_ban)
    }

    fn ban(&mut self, peer: PeerId, base: Duration) -> Duration {
        let addrs: Vec<RemoteAddr> = self
            .remotes
            .values()
            .filter(|(p, _)| *p == peer)
            .map(|(_, a)| *a)
            .collect();
        self.bans.ban(peer, &addrs, base, Instant::now())
    }

    /// Lifts the ban of an admitted peer.
    pub(crate) fn lift(&mut self, peer: &PeerId) {
        self.bans.lift(peer);
    }

    fn deny(&self, why: Banned) -> ConnectionDenied {
        self.denied.inc();
        ConnectionDenied::new(why)
    }

    fn check_peer(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.bans.peer_banned(peer, Instant::now()) {
            return Err(self.deny(Banned::Peer(*peer)));
        }
        Ok(())
    }

    fn check_addr(&self, addr: &Multiaddr) -> Result<(), ConnectionDenied> {
        if let Some(a) = RemoteAddr::of(addr)
            && self.bans.addr_banned(&a, Instant::now())
        {
            return Err(self.deny(Banned::Address(addr.clone())));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("bans", &self.bans)
            .finish_non_exhaustive()
    }
}

/// Why a connection was denied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Banned {
    /// The peer failed admission recently.
    #[error("peer {0} is banned after failing admission")]
    Peer(PeerId),
    /// A peer that failed admission recently connected from this address.
    #[error("address {0} is banned after a peer from it failed admission")]
    Address(Multiaddr),
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check_addr(remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_peer(&peer)?;
        if let Some(a) = RemoteAddr::of(remote) {
            self.remotes.insert(id, (peer, a));
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.check_peer(&peer)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_peer(&peer)?;
        if let Some(a) = RemoteAddr::of(addr) {
            self.remotes.insert(id, (peer, a));
        }
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::ConnectionClosed(c) = event {
            self.remotes.remove(&c.connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED_BAN: Duration = Duration::from_secs(30);
    const MAX_BAN: Duration = Duration::from_secs(3600);

    fn bans() -> BanList {
        let p = gaiamesh_core::Params::default().admission;
        assert_eq!((p.refused_ban, p.max_ban), (REFUSED_BAN, MAX_BAN));
        BanList::new(p.max_ban)
    }

    fn addr(s: &str) -> RemoteAddr {
        RemoteAddr::of(&s.parse().unwrap()).unwrap()
    }

    #[test]
    fn bans_double_per_refusal_and_end() {
        let mut bans = bans();
        let peer = PeerId::random();
        let a = addr("/ip4/10.0.0.1/udp/7400/quic-v1");
        let t0 = Instant::now();
        assert_eq!(bans.ban(peer, &[a], REFUSED_BAN, t0), REFUSED_BAN);
        assert!(bans.peer_banned(&peer, t0 + Duration::from_secs(29)));
        assert!(bans.addr_banned(&a, t0 + Duration::from_secs(29)));
        assert!(!bans.peer_banned(&peer, t0 + Duration::from_secs(31)));
        assert!(
            !bans.addr_banned(&addr("/ip4/10.0.0.1/tcp/7400"), t0),
            "tcp ≠ udp"
        );
        let t1 = t0 + Duration::from_secs(40);
        assert_eq!(bans.ban(peer, &[], REFUSED_BAN, t1), 2 * REFUSED_BAN);
        let mut t = t1;
        for _ in 0..20 {
            t += Duration::from_secs(1);
            bans.ban(peer, &[], REFUSED_BAN, t);
        }
        assert_eq!(bans.ban(peer, &[], REFUSED_BAN, t), MAX_BAN, "capped");
        assert_eq!(bans.banned_peers(t), 1);
        bans.lift(&peer);
        assert!(!bans.peer_banned(&peer, t));
    }

    #[test]
    fn old_bans_are_forgotten_and_the_table_is_bounded() {
        let mut bans = bans();
        let t0 = Instant::now();
        let old = PeerId::random();
        bans.ban(old, &[], REFUSED_BAN, t0);
        let later = t0 + REFUSED_BAN + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(
            bans.ban(old, &[], REFUSED_BAN, later),
            REFUSED_BAN,
            "strikes forgotten"
        );
        for i in 0..MAX_ENTRIES + 10 {
            bans.ban(
                PeerId::random(),
                &[],
                REFUSED_BAN,
                later + Duration::from_millis(i as u64),
            );
        }
        assert!(bans.peers.len() <= MAX_ENTRIES);
    }

    #[test]
    fn remote_addresses_need_ip_and_port() {
        assert_eq!(
            RemoteAddr::of(
                &"/ip6/::1/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
                    .parse()
                    .unwrap()
            ),
            Some(RemoteAddr {
                ip: "::1".parse().unwrap(),
                udp: false,
                port: 1
            })
        );
        assert_eq!(
            RemoteAddr::of(&"/dns4/x.example/tcp/1".parse().unwrap()),
            None
        );
        assert_eq!(RemoteAddr::of(&"/ip4/1.2.3.4".parse().unwrap()), None);
    }
}
