//! The TCP transport: noise + yamux, behind libp2p's private-network layer (pnet) when the
//! genesis sets a pre-shared key. QUIC cannot carry pnet; admission guards it either way.

use anyhow::{Context, Result, bail};
use libp2p::{
    PeerId, Transport,
    core::{muxing::StreamMuxerBox, transport::Boxed, upgrade::Version},
    identity::Keypair,
    noise,
    pnet::{PnetConfig, PreSharedKey},
    tcp, yamux,
};

/// Parses the genesis `policy.psk` (64 hex digits).
pub(crate) fn parse_psk(hex_text: &str) -> Result<PreSharedKey> {
    let bytes = hex::decode(hex_text).context("genesis policy.psk is not hex")?;
    let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        bail!("genesis policy.psk must be 32 bytes (64 hex digits)");
    };
    Ok(PreSharedKey::new(key))
}

/// TCP + (pnet) + noise + yamux.
pub(crate) fn tcp(
    key: &Keypair,
    psk: Option<PreSharedKey>,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let base = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let noise = noise::Config::new(key)?;
    let yamux = yamux::Config::default();
    Ok(match psk {
        Some(psk) => base
            .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
            .upgrade(Version::V1)
            .authenticate(noise)
            .multiplex(yamux)
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
        None => base
            .upgrade(Version::V1)
            .authenticate(noise)
            .multiplex(yamux)
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_must_be_32_bytes_of_hex() {
        assert!(parse_psk(&"ab".repeat(32)).is_ok());
        assert!(parse_psk("zz").is_err());
        assert!(parse_psk(&"ab".repeat(31)).is_err());
    }
}
