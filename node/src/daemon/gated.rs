//! Protocols that answer only admitted peers. [`Gated`] wraps a behaviour (Kademlia,
//! identify) so that on a connection to a peer this node has not admitted, the wrapped
//! protocol neither accepts inbound streams (they fail negotiation, as if the protocol were
//! not spoken) nor is polled (it sends nothing). The gate is closed when the connection is
//! established — before any stream of the wrapped protocol can open. A non-member thus
//! learns neither the routing table nor the node's addresses, protocols or version; before,
//! it had kad and identify answers until its admission failed (up to 2 s).
//!
//! The gate opens in two steps, so that the first identify exchange of two members finds
//! the other side open: [`Gated::open`] (this node admitted the peer: its streams are
//! accepted) and [`Gated::start`] (the peer has admitted this node too: the wrapped protocol
//! runs, as on a fresh connection, and identify sends its first request). The event loop
//! opens when it admits a peer, and admits before it answers the peer's admission request;
//! so the peer's answer to *our* request proves the peer's gate is open, and that is when
//! it starts. The gate closes again when the peer's last connection closes: a reconnecting
//! peer runs admission afresh.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    task::{Context, Poll},
};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse, upgrade::DeniedUpgrade},
    swarm::{
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, NotifyHandler, SubstreamProtocol, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
        derive_prelude::Either,
        handler::{
            ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
            ListenUpgradeError, SendWrapper,
        },
    },
};

/// Most gate openings queued for delivery to connection handlers.
const MAX_PENDING_OPENS: usize = 4096;

/// A behaviour whose protocol answers admitted peers only.
pub(crate) struct Gated<B> {
    inner: B,
    /// Peers this node admitted (their streams are accepted).
    admitted: HashSet<PeerId>,
    /// Peers known to have admitted this node too (the wrapped protocol runs).
    started: HashSet<PeerId>,
    connections: HashMap<PeerId, HashSet<ConnectionId>>,
    /// (peer, connection, start): gate events to deliver (`false`: open only).
    notices: VecDeque<(PeerId, ConnectionId, bool)>,
}

impl<B> Gated<B> {
    /// `inner`, closed to every peer until it is admitted.
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            admitted: HashSet::new(),
            started: HashSet::new(),
            connections: HashMap::new(),
            notices: VecDeque::new(),
        }
    }

    /// This node admitted `peer`: its streams of the protocol are accepted, on every
    /// connection it has and will have.
    pub(crate) fn open(&mut self, peer: PeerId) {
        if self.admitted.insert(peer) {
            self.notify(peer, false);
        }
    }

    /// `peer` admitted this node too: the protocol runs (opened first if need be).
    pub(crate) fn start(&mut self, peer: PeerId) {
        self.admitted.insert(peer);
        if self.started.insert(peer) {
            self.notify(peer, true);
        }
    }

    fn notify(&mut self, peer: PeerId, start: bool) {
        for c in self.connections.get(&peer).into_iter().flatten() {
            if self.notices.len() < MAX_PENDING_OPENS {
                self.notices.push_back((peer, *c, start));
            }
        }
    }

    /// Closes the protocol to `peer`'s future connections (its current ones are closed by
    /// the caller, which disconnects it).
    pub(crate) fn close(&mut self, peer: &PeerId) {
        self.admitted.remove(peer);
        self.started.remove(peer);
    }

    fn handler<H>(&self, inner: H, peer: &PeerId) -> GatedHandler<H> {
        GatedHandler {
            inner,
            open: self.admitted.contains(peer),
            started: self.started.contains(peer),
        }
    }

    /// Whether the protocol is open to `peer`.
    #[cfg(test)]
    pub(crate) fn is_open(&self, peer: &PeerId) -> bool {
        self.admitted.contains(peer)
    }
}

impl<B> std::ops::Deref for Gated<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> std::ops::DerefMut for Gated<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Gated<B> {
    type ConnectionHandler = GatedHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )?;
        Ok(self.handler(inner, &peer))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )?;
        Ok(self.handler(inner, &peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match &event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .insert(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(set) = self.connections.get_mut(&e.peer_id) {
                    set.remove(&e.connection_id);
                    if set.is_empty() {
                        self.connections.remove(&e.peer_id);
                    }
                }
                if e.remaining_established == 0 {
                    self.close(&e.peer_id);
                }
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some((peer_id, c, start)) = self.notices.pop_front() {
            return Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(c),
                event: if start { GateIn::Start } else { GateIn::Open },
            });
        }
        self.inner.poll(cx).map(|e| e.map_in(GateIn::Inner))
    }
}

/// An event for a [`GatedHandler`].
#[derive(Debug)]
pub(crate) enum GateIn<E> {
    /// For the wrapped handler.
    Inner(E),
    /// The peer was admitted: accept its streams.
    Open,
    /// The peer admitted this node too: run the protocol.
    Start,
}

/// The connection handler of a [`Gated`] behaviour.
pub(crate) struct GatedHandler<H> {
    inner: H,
    /// Inbound streams are accepted.
    open: bool,
    /// The inner handler is polled.
    started: bool,
}

impl<H: ConnectionHandler> ConnectionHandler for GatedHandler<H> {
    type FromBehaviour = GateIn<H::FromBehaviour>;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = Either<SendWrapper<H::InboundProtocol>, SendWrapper<DeniedUpgrade>>;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = Either<H::InboundOpenInfo, ()>;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        if self.open {
            self.inner
                .listen_protocol()
                .map_upgrade(|u| Either::Left(SendWrapper(u)))
                .map_info(Either::Left)
        } else {
            SubstreamProtocol::new(Either::Right(SendWrapper(DeniedUpgrade)), Either::Right(()))
        }
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {
            GateIn::Inner(e) => self.inner.on_behaviour_event(e),
            GateIn::Open => self.open = true,
            GateIn::Start => {
                self.open = true;
                self.started = true;
            }
        }
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        if self.started {
            self.inner.poll(cx)
        } else {
            Poll::Pending
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            '_,
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, info }) => {
                // Only an open gate negotiates the inner protocol (the closed one denies).
                if let (futures::future::Either::Left(protocol), Either::Left(info)) =
                    (protocol, info)
                {
                    self.inner
                        .on_connection_event(ConnectionEvent::FullyNegotiatedInbound(
                            FullyNegotiatedInbound { protocol, info },
                        ));
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol,
                info,
            }) => self
                .inner
                .on_connection_event(ConnectionEvent::FullyNegotiatedOutbound(
                    FullyNegotiatedOutbound { protocol, info },
                )),
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => self
                .inner
                .on_connection_event(ConnectionEvent::DialUpgradeError(DialUpgradeError {
                    info,
                    error,
                })),
            ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error }) => {
                // A denied stream of a closed gate is not the inner protocol's business.
                if let (Either::Left(info), Either::Left(error)) = (info, error) {
                    self.inner
                        .on_connection_event(ConnectionEvent::ListenUpgradeError(
                            ListenUpgradeError { info, error },
                        ));
                }
            }
            ConnectionEvent::AddressChange(c) => self
                .inner
                .on_connection_event(ConnectionEvent::AddressChange(c)),
            ConnectionEvent::LocalProtocolsChange(c) => self
                .inner
                .on_connection_event(ConnectionEvent::LocalProtocolsChange(c)),
            ConnectionEvent::RemoteProtocolsChange(c) => self
                .inner
                .on_connection_event(ConnectionEvent::RemoteProtocolsChange(c)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use libp2p::{Swarm, identify, noise, swarm::SwarmEvent, tcp, yamux};

    use super::*;

    fn swarm<B: NetworkBehaviour>(
        behaviour: impl FnOnce(&libp2p::identity::Keypair) -> B,
    ) -> Swarm<B> {
        libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|k| behaviour(k))
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build()
    }

    fn identify(k: &libp2p::identity::Keypair) -> identify::Behaviour {
        identify::Behaviour::new(identify::Config::new("/gaiamesh/id/1".into(), k.public()))
    }

    /// An outsider that connects learns nothing by identify until the member admits it;
    /// then the member identifies it and pushes its own information.
    #[tokio::test]
    async fn a_peer_gets_identify_answers_only_once_admitted() {
        let mut member = swarm(|k| Gated::new(identify(k)));
        let mut outsider = swarm(identify);
        member
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = member.select_next_some().await {
                break address;
            }
        };
        let member_id = *member.local_peer_id();
        let outsider_id = *outsider.local_peer_id();
        outsider.dial(addr).expect("dial");
        // The outsider's identify request is refused (the protocol is not spoken to it) and
        // the member, gated, sends nothing.
        let refused = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                tokio::select! {
                    e = outsider.select_next_some() => match e {
                        SwarmEvent::Behaviour(identify::Event::Error { peer_id, .. }) => {
                            break peer_id;
                        }
                        SwarmEvent::Behaviour(identify::Event::Received { .. }) => {
                            panic!("the outsider was answered before admission");
                        }
                        _ => {}
                    },
                    e = member.select_next_some() => {
                        if let SwarmEvent::Behaviour(ev) = e {
                            panic!("the gated member spoke identify: {ev:?}");
                        }
                    }
                }
            }
        })
        .await
        .expect("the outsider's identify request fails");
        assert_eq!(refused, member_id);
        assert!(!member.behaviour().is_open(&outsider_id));
        // Admitted, and known to have admitted it: the member's identify starts as on a
        // fresh connection.
        member.behaviour_mut().open(outsider_id);
        member.behaviour_mut().start(outsider_id);
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                tokio::select! {
                    e = member.select_next_some() => {
                        if let SwarmEvent::Behaviour(identify::Event::Received { peer_id, .. }) = e {
                            assert_eq!(peer_id, outsider_id);
                            break;
                        }
                    }
                    _ = outsider.select_next_some() => {}
                }
            }
        })
        .await
        .expect("identify runs once admitted");
    }

    /// Two members in the order the event loop admits: each opens when it admits the other,
    /// and starts when the other's answer shows it was admitted; both then identify each
    /// other at the first attempt.
    #[tokio::test]
    async fn two_members_identify_each_other_once_both_admitted() {
        let mut a = swarm(|k| Gated::new(identify(k)));
        let mut b = swarm(|k| Gated::new(identify(k)));
        a.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
                break address;
            }
        };
        let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
        b.dial(addr).expect("dial");
        let (mut a_connected, mut b_connected) = (false, false);
        while !(a_connected && b_connected) {
            tokio::select! {
                e = a.select_next_some() => {
                    a_connected |= matches!(e, SwarmEvent::ConnectionEstablished { .. });
                }
                e = b.select_next_some() => {
                    b_connected |= matches!(e, SwarmEvent::ConnectionEstablished { .. });
                }
            }
        }
        a.behaviour_mut().open(b_id);
        b.behaviour_mut().open(a_id);
        a.behaviour_mut().start(b_id);
        b.behaviour_mut().start(a_id);
        let (mut a_got, mut b_got) = (false, false);
        tokio::time::timeout(Duration::from_secs(20), async {
            while !(a_got && b_got) {
                tokio::select! {
                    e = a.select_next_some() => match e {
                        SwarmEvent::Behaviour(identify::Event::Received { peer_id, .. }) => {
                            assert_eq!(peer_id, b_id);
                            a_got = true;
                        }
                        SwarmEvent::Behaviour(identify::Event::Error { error, .. }) => {
                            panic!("a: {error}");
                        }
                        _ => {}
                    },
                    e = b.select_next_some() => match e {
                        SwarmEvent::Behaviour(identify::Event::Received { peer_id, .. }) => {
                            assert_eq!(peer_id, a_id);
                            b_got = true;
                        }
                        SwarmEvent::Behaviour(identify::Event::Error { error, .. }) => {
                            panic!("b: {error}");
                        }
                        _ => {}
                    },
                }
            }
        })
        .await
        .expect("identify runs both ways once admitted");
    }
}
