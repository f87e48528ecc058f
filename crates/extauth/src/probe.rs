//! Asking the external server which SASL mechanisms it offers.
//!
//! The engine's client picks its one configured mechanism and fails if the server does not
//! offer it; it cannot report the list. So the probe reads the server's protocol header and
//! `sasl-mechanisms` frame with the codec directly, then drops the connection (part 5 §5.3.2:
//! the server offers first, before the client has said anything but its header).

use bytes::BytesMut;
use sluice_codec::frame::{FrameBody, ProtocolHeader, ProtocolId, decode_frame};
use sluice_codec::security::SaslFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ExtAuthError;
use crate::io::{READ_BUFFER_BYTES, Stream, connect};
use crate::server::ExternalServer;
use crate::{MECHANISMS_MAX, SASL_FRAME_SIZE_MAX};

/// The mechanisms the server offers (connect, read sasl-mechanisms, disconnect), in the
/// server's order of preference. Sluice offers these to its clients; it asks again
/// periodically. Bounded by [`ExternalServer::timeout`].
pub async fn probe_mechanisms(server: &ExternalServer) -> Result<Vec<String>, ExtAuthError> {
    let deadline = tokio::time::Instant::now() + server.timeout;
    tokio::time::timeout_at(deadline, probe(server))
        .await
        .map_err(|_| ExtAuthError::Timeout)?
}

async fn probe(server: &ExternalServer) -> Result<Vec<String>, ExtAuthError> {
    let mut stream = connect(server).await?;
    stream
        .write_all(&ProtocolHeader::SASL.to_bytes())
        .await
        .map_err(|e| ExtAuthError::Disconnected(format!("writing the SASL header: {e}")))?;
    let mut input = BytesMut::with_capacity(READ_BUFFER_BYTES);
    read_header(&mut stream, &mut input).await?;
    let mechanisms = loop {
        match decode_frame(&mut input, SASL_FRAME_SIZE_MAX) {
            Ok(Some(frame)) => match frame.body {
                FrameBody::Sasl(SaslFrame::Mechanisms(m)) => break m.sasl_server_mechanisms,
                other => {
                    return Err(ExtAuthError::Protocol(format!(
                        "expected sasl-mechanisms, got {other:?}"
                    )));
                }
            },
            Ok(None) => fill(&mut stream, &mut input, "sasl-mechanisms").await?,
            Err(e) => {
                return Err(ExtAuthError::Protocol(format!(
                    "cannot read sasl-mechanisms: {e}"
                )));
            }
        }
    };
    if mechanisms.len() > MECHANISMS_MAX {
        return Err(ExtAuthError::TooLarge(format!(
            "the server offers {} SASL mechanisms, at most {MECHANISMS_MAX} are read",
            mechanisms.len()
        )));
    }
    // Dropping the stream ends the connection: the server sees the client go away before
    // choosing, which SASL allows (the client may always abort).
    Ok(mechanisms.iter().map(|m| m.as_str().to_string()).collect())
}

/// Reads the server's protocol header, which must be the SASL one.
async fn read_header(stream: &mut Stream, input: &mut BytesMut) -> Result<(), ExtAuthError> {
    let header = loop {
        match ProtocolHeader::decode(input) {
            Ok(Some(header)) => break header,
            Ok(None) => fill(stream, input, "the protocol header").await?,
            Err(e) => {
                return Err(ExtAuthError::Protocol(format!(
                    "not an AMQP protocol header: {e}"
                )));
            }
        }
    };
    if header.protocol() != Some(ProtocolId::Sasl) || !header.is_supported() {
        return Err(ExtAuthError::Protocol(format!(
            "the server answered the SASL header with {header:?}"
        )));
    }
    let _ = input.split_to(8);
    Ok(())
}

/// Reads more bytes; the peer ending the connection is an error naming what was awaited.
async fn fill(
    stream: &mut Stream,
    input: &mut BytesMut,
    awaited: &str,
) -> Result<(), ExtAuthError> {
    input.reserve(READ_BUFFER_BYTES);
    match stream.read_buf(input).await {
        Ok(0) => Err(ExtAuthError::Disconnected(format!(
            "the server closed the connection before sending {awaited}"
        ))),
        Ok(_) => Ok(()),
        Err(e) => Err(ExtAuthError::Disconnected(format!(
            "reading {awaited}: {e}"
        ))),
    }
}
