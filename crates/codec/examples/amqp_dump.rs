//! Decodes an AMQP 1.0 byte stream and prints every protocol header and frame.
//!
//! ```text
//! cargo run -p sluice-codec --example amqp_dump                # a sample conversation
//! cargo run -p sluice-codec --example amqp_dump -- capture.bin # bytes a server read
//! ```
//! The input is what one side of a connection sends: protocol headers, then SASL or AMQP
//! frames. Transfers' payloads are scanned as messages and shown section by section.

use std::io::Read;

use bytes::{Buf, BytesMut};
use sluice_codec::frame::{
    FrameBody, ProtocolHeader, decode_frame, encode_performative, encode_sasl, encode_transfer,
};
use sluice_codec::messaging::{Header, Message, Properties, ScannedMessage, Target};
use sluice_codec::security::{SaslFrame, SaslInit};
use sluice_codec::transport::{
    Attach, AttachTarget, Begin, Close, DeliveryTag, Disposition, Flow, Open, Performative, Role,
    Transfer,
};
use sluice_codec::types::Symbol;
use sluice_codec::{CodecError, Encode};

/// Frames larger than this are refused, as a server would before `open` raised it.
const MAX_FRAME_SIZE: u32 = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let input = match std::env::args().nth(1) {
        Some(path) if path == "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        }
        Some(path) => std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?,
        None => sample()?.to_vec(),
    };
    let mut buf = BytesMut::from(&input[..]);
    if let Err(e) = dump(&mut buf) {
        println!("error: {e} (AMQP condition {})", e.condition());
        std::process::exit(1);
    }
    if !buf.is_empty() {
        println!("{} trailing bytes do not make a whole frame", buf.len());
    }
    Ok(())
}

fn dump(buf: &mut BytesMut) -> Result<(), CodecError> {
    loop {
        if buf.starts_with(b"AMQP") || (buf.len() < 4 && b"AMQP".starts_with(buf)) {
            let Some(header) = ProtocolHeader::decode(buf)? else {
                return Ok(());
            };
            buf.advance(8);
            println!(
                "protocol header: id {} version {}.{}.{}",
                header.id, header.major, header.minor, header.revision
            );
            continue;
        }
        let Some(frame) = decode_frame(buf, MAX_FRAME_SIZE)? else {
            return Ok(());
        };
        match frame.body {
            FrameBody::Empty => println!("[{}] empty frame (heartbeat)", frame.channel),
            FrameBody::Sasl(sasl) => println!("sasl: {sasl:?}"),
            FrameBody::Amqp {
                performative,
                payload,
            } => {
                println!("[{}] {performative:?}", frame.channel);
                if let Performative::Transfer(_) = performative
                    && !payload.is_empty()
                {
                    match ScannedMessage::scan(payload.clone())
                        .and_then(|_| Message::decode(&payload))
                    {
                        Ok(message) => println!("      message: {message:?}"),
                        Err(e) => println!(
                            "      payload of {} bytes is not a whole message: {e}",
                            payload.len()
                        ),
                    }
                }
            }
        }
    }
}

/// What a client sends to publish one message: SASL ANONYMOUS, open, begin, attach, a transfer,
/// a disposition and a close.
fn sample() -> Result<BytesMut, CodecError> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&ProtocolHeader::SASL.to_bytes());
    let init = SaslInit {
        mechanism: Symbol::from_static("ANONYMOUS"),
        initial_response: None,
        hostname: Some("localhost".into()),
    };
    encode_sasl(&mut out, &SaslFrame::Init(init), 512)?;
    out.extend_from_slice(&ProtocolHeader::AMQP.to_bytes());
    let open = Open {
        container_id: "amqp-dump".into(),
        max_frame_size: 65536,
        idle_time_out: Some(30_000),
        ..Default::default()
    };
    encode_performative(&mut out, 0, &open.into(), 512)?;
    let begin = Begin {
        next_outgoing_id: 0,
        incoming_window: 2048,
        outgoing_window: 2048,
        ..Default::default()
    };
    encode_performative(&mut out, 0, &begin.into(), 65536)?;
    let attach = Attach {
        name: "sender".into(),
        handle: 0,
        role: Role::Sender,
        target: Some(AttachTarget::Target(Target {
            address: Some("orders".into()),
            ..Default::default()
        })),
        ..Default::default()
    };
    encode_performative(&mut out, 0, &attach.into(), 65536)?;
    let message = Message {
        header: Some(Header {
            durable: true,
            ..Default::default()
        }),
        properties: Some(Properties {
            to: Some("orders".into()),
            ..Default::default()
        }),
        ..Message::with_data(&b"hello"[..])
    };
    let transfer = Transfer {
        handle: 0,
        delivery_id: Some(0),
        delivery_tag: Some(DeliveryTag::from_u64(0)),
        message_format: Some(0),
        ..Default::default()
    };
    encode_transfer(&mut out, 0, &transfer, &message.to_bytes(), 65536)?;
    let flow = Flow {
        incoming_window: 2048,
        next_outgoing_id: 1,
        outgoing_window: 2048,
        ..Default::default()
    };
    encode_performative(&mut out, 0, &flow.into(), 65536)?;
    let disposition = Disposition {
        role: Role::Sender,
        first: 0,
        settled: true,
        ..Default::default()
    };
    encode_performative(&mut out, 0, &disposition.into(), 65536)?;
    encode_performative(&mut out, 0, &Close::default().into(), 65536)?;
    Ok(out)
}
