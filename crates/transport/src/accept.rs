//! Turning an accepted TCP socket into a [`Stream`] for each listener kind.
//!
//! None of these functions has a timer: a peer that sends nothing holds the accept until the
//! caller gives up, so the caller wraps each call in its handshake deadline
//! (`tokio::time::timeout`). What a peer can make us buffer before the handshake ends is
//! bounded: 8 bytes read ahead here, rustls's handshake message limit (64 KiB), and
//! tungstenite's upgrade request limit (64 KiB).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::prefixed::Prefixed;
use crate::subject::client_subject;
use crate::{PeerInfo, Stream, Tls, TransportError, ws};

/// The length of an AMQP protocol header (AMQP 1.0 part 2 §2.2).
pub const AMQP_HEADER_BYTES: usize = 8;

/// The header that asks for (and grants) the TLS layer: protocol id 2, version 1.0.0
/// (AMQP 1.0 part 5 §5.2.1).
pub const AMQP_TLS_HEADER: [u8; AMQP_HEADER_BYTES] = *b"AMQP\x02\x01\x00\x00";

/// How many bytes the TLS port reads to tell plain AMQP (`AMQP`) from a TLS client hello.
const TLS_PORT_SNIFF_BYTES: usize = 4;

/// The plain AMQP port (5672). Reads the 8-byte protocol header, then:
/// - `AMQP\x02\x01\x00\x00` (TLS, part 5 §5.2) with `tls` given: writes the same header back
///   and runs the TLS handshake; the stream then carries the next protocol header inside TLS.
/// - another `AMQP\x02` version with `tls` given: writes our TLS header back and fails with
///   [`TransportError::UnsupportedTlsHeader`] (part 2 §2.2: answer with a supported version,
///   then close).
/// - `AMQP\x02..` without `tls`: a stream that replays the 8 bytes (the engine answers with
///   its own header and closes, as the spec asks).
/// - anything else: a stream that replays the 8 bytes, then the rest (plain AMQP or SASL).
///
/// Sets `TCP_NODELAY`. Has no timer: wrap it in the handshake deadline.
pub async fn accept_amqp(
    mut tcp: TcpStream,
    tls: Option<&Tls>,
) -> Result<(Stream, PeerInfo), TransportError> {
    let addr = prepare(&tcp)?;
    let header = read_first::<AMQP_HEADER_BYTES>(&mut tcp).await?;
    match tls {
        Some(tls) if header.starts_with(b"AMQP\x02") => {
            tcp.write_all(&AMQP_TLS_HEADER).await?;
            if header != AMQP_TLS_HEADER {
                return Err(TransportError::UnsupportedTlsHeader { header });
            }
            let (stream, client_subject) = handshake(tls, Prefixed::new(tcp)).await?;
            Ok((Stream::tls(stream), peer(addr, true, client_subject, false)))
        }
        _ => Ok((
            Stream::plain(Prefixed::replaying(&header, tcp)),
            peer(addr, false, None, false),
        )),
    }
}

/// The TLS port (5671): TLS first. If the first bytes are `AMQP` (a client speaking plain
/// AMQP to the TLS port), writes back the AMQP TLS header `AMQP\x02\x01\x00\x00` and fails
/// with [`TransportError::PlainOnTlsPort`] (the caller logs it and drops the socket).
///
/// Sets `TCP_NODELAY`. Has no timer: wrap it in the handshake deadline.
pub async fn accept_amqps(
    mut tcp: TcpStream,
    tls: &Tls,
) -> Result<(Stream, PeerInfo), TransportError> {
    let addr = prepare(&tcp)?;
    let first = read_first::<TLS_PORT_SNIFF_BYTES>(&mut tcp).await?;
    if &first == b"AMQP" {
        tcp.write_all(&AMQP_TLS_HEADER).await?;
        return Err(TransportError::PlainOnTlsPort);
    }
    let (stream, client_subject) = handshake(tls, Prefixed::replaying(&first, tcp)).await?;
    Ok((Stream::tls(stream), peer(addr, true, client_subject, false)))
}

/// AMQP over WebSockets (EnMasse's `messaging-wss`, 8443): TLS, then an HTTP upgrade that
/// must offer the `amqp` subprotocol (`Sec-WebSocket-Protocol`), echoed in the response; a
/// request without it is refused with HTTP 400 and [`TransportError::NotAmqpSubprotocol`].
///
/// Binary messages carry AMQP bytes in either direction and their boundaries mean nothing;
/// a text message is a read error; pings are answered; a close ends the stream (read returns
/// 0). The bytes of one round of writes go out as one binary message on `flush` (or when
/// they reach [`WS_MESSAGE_BYTES_MAX`](crate::WS_MESSAGE_BYTES_MAX), which also bounds what
/// the peer may send in one message or frame).
///
/// Sets `TCP_NODELAY`. Has no timer: wrap it in the handshake deadline.
pub async fn accept_wss(tcp: TcpStream, tls: &Tls) -> Result<(Stream, PeerInfo), TransportError> {
    let addr = prepare(&tcp)?;
    let (stream, client_subject) = handshake(tls, Prefixed::new(tcp)).await?;
    let ws = ws::accept(stream).await?;
    Ok((Stream::wss(ws), peer(addr, true, client_subject, true)))
}

/// [`accept_wss`] without TLS (for tests and TLS-terminating proxies).
pub async fn accept_ws(tcp: TcpStream) -> Result<(Stream, PeerInfo), TransportError> {
    let addr = prepare(&tcp)?;
    let ws = ws::accept(Prefixed::new(tcp)).await?;
    Ok((Stream::ws(ws), peer(addr, false, None, true)))
}

/// The peer's address; and `TCP_NODELAY`, without which every request/response step of AMQP
/// (attach, flow, disposition) waits out delayed ACKs.
fn prepare(tcp: &TcpStream) -> Result<SocketAddr, TransportError> {
    tcp.set_nodelay(true)?;
    Ok(tcp.peer_addr()?)
}

fn peer(addr: SocketAddr, tls: bool, client_subject: Option<String>, websocket: bool) -> PeerInfo {
    PeerInfo {
        addr,
        tls,
        client_subject,
        websocket,
    }
}

/// Reads exactly `N` bytes (never more: the rest stays in the socket for the next layer).
async fn read_first<const N: usize>(tcp: &mut TcpStream) -> Result<[u8; N], TransportError> {
    let mut bytes = [0u8; N];
    let mut filled = 0;
    while let Some(rest) = bytes.get_mut(filled..)
        && !rest.is_empty()
    {
        match tcp.read(rest).await? {
            0 => {
                return Err(TransportError::HeaderIncomplete {
                    received: filled,
                    expected: N,
                });
            }
            read => filled += read,
        }
    }
    Ok(bytes)
}

/// The server side of the TLS handshake with the configuration in use now, and the verified
/// client certificate's subject, if the client sent one.
async fn handshake(
    tls: &Tls,
    io: Prefixed<TcpStream>,
) -> Result<(TlsStream<Prefixed<TcpStream>>, Option<String>), TransportError> {
    let stream = tls
        .acceptor()
        .accept(io)
        .await
        .map_err(TransportError::Tls)?;
    let subject = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|end_entity| client_subject(end_entity));
    Ok((stream, subject))
}
