//! Length-prefixed postcard framing for request-response, with the wire types' limits
//! enforced before anything is allocated.

use std::{io, marker::PhantomData};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{StreamProtocol, request_response};

/// How a message type is framed.
pub(crate) trait Frame: Sized + Send {
    /// Largest encoded message.
    const LIMIT: usize;
    fn to_bytes(&self) -> io::Result<Vec<u8>>;
    fn from_bytes(bytes: &[u8]) -> io::Result<Self>;
}

/// A codec for request type `Q` and response type `R`.
pub(crate) struct PostcardCodec<Q, R>(PhantomData<fn() -> (Q, R)>);

impl<Q, R> Default for PostcardCodec<Q, R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Q, R> Clone for PostcardCodec<Q, R> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

async fn read_frame<T: AsyncRead + Unpin + Send, M: Frame>(io: &mut T) -> io::Result<M> {
    M::from_bytes(&read_bytes(io, M::LIMIT).await?)
}

/// Reads one length-prefixed message of at most `limit` bytes (checked before allocating).
pub(crate) async fn read_bytes<T: AsyncRead + Unpin>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes one length-prefixed message and flushes (the stream stays open).
pub(crate) async fn write_bytes<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: Vec<u8>) -> io::Result<()> {
    write_bytes(io, &bytes).await?;
    io.close().await
}

impl<Q: Frame + 'static, R: Frame + 'static> request_response::Codec for PostcardCodec<Q, R> {
    type Protocol = StreamProtocol;
    type Request = Q;
    type Response = R;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Q> {
        read_frame(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<R> {
        read_frame(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Q,
    ) -> io::Result<()> {
        let bytes = req.to_bytes()?;
        write_frame(io, bytes).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: R,
    ) -> io::Result<()> {
        let bytes = res.to_bytes()?;
        write_frame(io, bytes).await
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

macro_rules! frame {
    ($t:ty, $limit:expr) => {
        impl Frame for $t {
            const LIMIT: usize = $limit;
            fn to_bytes(&self) -> io::Result<Vec<u8>> {
                self.encode().map_err(invalid)
            }
            fn from_bytes(bytes: &[u8]) -> io::Result<Self> {
                <$t>::decode(bytes).map_err(invalid)
            }
        }
    };
}

use gaiamesh_protocol::wire::{
    Admission, DirectoryRequest, DirectoryResponse, MAX_ADMISSION_BYTES,
    MAX_DIRECTORY_MESSAGE_BYTES,
};

frame!(Admission, MAX_ADMISSION_BYTES);
frame!(DirectoryRequest, MAX_DIRECTORY_MESSAGE_BYTES);
frame!(DirectoryResponse, MAX_DIRECTORY_MESSAGE_BYTES);
