//! A client that writes its frames by hand, for what the engine will not send: transfers that
//! say `more` and never finish a delivery.
//!
//! It does the minimum a broker requires before it takes transfers: the SASL exchange
//! (ANONYMOUS, or PLAIN with the URL's credentials), `open`, one session, sender links. Then it
//! keeps the session's rules so that what the broker holds is the frames', not a protocol
//! error's: it sends only within the broker's incoming window (part 2 §2.5.6: a transfer past
//! it is a window violation), which it recomputes from every flow as
//! `next-incoming-id + incoming-window - next-outgoing-id`; it starts a delivery only with
//! link credit; it stops sending on a link the broker detaches before answering the detach
//! (transfers after our answer would name an unattached handle); and it sends heartbeats
//! within the broker's idle timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_codec::Encode;
use sluice_codec::SaslCode;
use sluice_codec::frame::{
    EMPTY_FRAME, FRAME_HEADER_SIZE, FrameBody, MIN_MAX_FRAME_SIZE, ProtocolHeader, decode_frame,
    encode_performative, encode_sasl, encode_transfer,
};
use sluice_codec::messaging::{Source, Target};
use sluice_codec::security::{SaslFrame, SaslInit};
use sluice_codec::transport::{
    Attach, AttachTarget, Begin, Close, DeliveryTag, Detach, Error, Open, Performative,
    Role as LinkRole, SenderSettleMode, Transfer,
};
use sluice_codec::types::Symbol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::driver::describe;
use crate::run::connect;
use crate::url::BenchUrl;

/// The largest frame we accept from the broker (it sends flows, attaches and detaches).
const FRAME_SIZE_MAX: u32 = 64 * 1024;
/// Our session's incoming window: the broker sends us no transfers.
const INCOMING_WINDOW: u32 = 2048;
/// Read buffer growth per read.
const READ_CHUNK: usize = 64 * 1024;

/// What the broker did to a link of ours.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detached {
    pub(crate) handle: u32,
    pub(crate) error: Option<Error>,
}

impl Detached {
    /// The broker's reason, for a report line.
    pub(crate) fn why(&self) -> String {
        self.error
            .as_ref()
            .map_or("no reason given".into(), describe)
    }
}

/// One connection with one session (channel 0), driven frame by frame.
pub(crate) struct RawClient {
    stream: TcpStream,
    input: BytesMut,
    output: BytesMut,
    /// The broker's max-frame-size.
    frame_max: u32,
    /// Half the broker's idle timeout: how long we may stay silent.
    heartbeat: Option<Duration>,
    last_write: Instant,
    /// Our session's next transfer id.
    next_outgoing_id: u32,
    /// Transfer frames the broker's session takes now.
    window: u32,
    /// Link credit by handle, from the broker's flows; a handle is here once attached.
    credit: HashMap<u32, u32>,
    /// The broker's max-message-size by handle, from its attach (0: none).
    message_size_max: HashMap<u32, u64>,
    /// Links the broker detached, not yet taken by [`RawClient::take_detached`].
    detached: Vec<Detached>,
    /// Why the broker ended the session or closed the connection, if it did.
    pub(crate) ended: Option<String>,
    /// The broker's close has arrived.
    closed: bool,
}

impl RawClient {
    /// Connects, authenticates, opens and begins a session.
    pub(crate) async fn connect(
        url: &BenchUrl,
        container_id: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let stream = connect(&url.host, url.port, timeout).await?;
        let _ = stream.set_nodelay(true);
        let mut c = RawClient {
            stream,
            input: BytesMut::with_capacity(READ_CHUNK),
            output: BytesMut::new(),
            frame_max: MIN_MAX_FRAME_SIZE,
            heartbeat: None,
            last_write: Instant::now(),
            next_outgoing_id: 0,
            window: 0,
            credit: HashMap::new(),
            message_size_max: HashMap::new(),
            detached: Vec::new(),
            ended: None,
            closed: false,
        };
        let handshake = async {
            c.sasl(url).await?;
            c.open(url, container_id).await
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| format!("the handshake with {}:{} timed out", url.host, url.port))??;
        Ok(c)
    }

    async fn sasl(&mut self, url: &BenchUrl) -> Result<(), String> {
        self.output
            .extend_from_slice(&ProtocolHeader::SASL.to_bytes());
        self.flush().await?;
        self.expect_header(ProtocolHeader::SASL).await?;
        match self.next_frame().await? {
            FrameBody::Sasl(SaslFrame::Mechanisms(_)) => {}
            other => return Err(format!("expected sasl-mechanisms, got {other:?}")),
        }
        let (mechanism, response) = match &url.credentials {
            Some((user, password)) => ("PLAIN", format!("\0{user}\0{password}")),
            None => ("ANONYMOUS", "anonymous".to_string()),
        };
        let init = SaslFrame::Init(SaslInit {
            mechanism: Symbol::from_static(mechanism),
            initial_response: Some(Bytes::from(response)),
            hostname: Some(url.host.as_str().into()),
        });
        encode_sasl(&mut self.output, &init, MIN_MAX_FRAME_SIZE).map_err(|e| e.to_string())?;
        self.flush().await?;
        match self.next_frame().await? {
            FrameBody::Sasl(SaslFrame::Outcome(o)) if o.code == SaslCode::Ok => Ok(()),
            other => Err(format!("authentication failed: {other:?}")),
        }
    }

    async fn open(&mut self, url: &BenchUrl, container_id: &str) -> Result<(), String> {
        self.output
            .extend_from_slice(&ProtocolHeader::AMQP.to_bytes());
        let open = Open {
            container_id: container_id.into(),
            hostname: Some(url.host.as_str().into()),
            max_frame_size: FRAME_SIZE_MAX,
            channel_max: 0,
            ..Default::default()
        };
        self.write(&open.into())?;
        let begin = Begin {
            next_outgoing_id: 0,
            incoming_window: INCOMING_WINDOW,
            outgoing_window: u32::MAX,
            ..Default::default()
        };
        self.write(&begin.into())?;
        self.flush().await?;
        self.expect_header(ProtocolHeader::AMQP).await?;
        loop {
            match self.next_frame().await? {
                FrameBody::Amqp {
                    performative: Performative::Open(open),
                    ..
                } => {
                    self.frame_max = open.max_frame_size.clamp(MIN_MAX_FRAME_SIZE, u32::MAX);
                    self.heartbeat = open
                        .idle_time_out
                        .filter(|ms| *ms > 0)
                        .map(|ms| Duration::from_millis(u64::from(ms) / 2));
                }
                FrameBody::Amqp {
                    performative: Performative::Begin(begin),
                    ..
                } => {
                    self.window = begin.incoming_window;
                    return Ok(());
                }
                FrameBody::Amqp {
                    performative: Performative::Close(close),
                    ..
                } => {
                    return Err(format!(
                        "the broker closed the connection: {}",
                        why(close.error)
                    ));
                }
                _ => {}
            }
        }
    }

    /// The broker's max-frame-size.
    pub(crate) fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// Attaches a sending link to `address` with `handle`; its credit arrives with the
    /// broker's flow ([`RawClient::credit`]).
    pub(crate) fn attach_sender(&mut self, handle: u32, address: &str) -> Result<(), String> {
        let attach = Attach {
            name: format!("sluice-hostile-partial-{handle}").as_str().into(),
            handle,
            role: LinkRole::Sender,
            snd_settle_mode: SenderSettleMode::Unsettled,
            source: Some(Source::default()),
            target: Some(AttachTarget::Target(Target {
                address: Some(address.into()),
                ..Default::default()
            })),
            initial_delivery_count: Some(0),
            ..Default::default()
        };
        self.write(&attach.into())
    }

    /// The link credit the broker has granted `handle` (0 before its flow).
    pub(crate) fn credit(&self, handle: u32) -> u32 {
        self.credit.get(&handle).copied().unwrap_or(0)
    }

    /// The broker's max-message-size for `handle`, once attached (0: none).
    pub(crate) fn message_size_max(&self, handle: u32) -> Option<u64> {
        self.message_size_max.get(&handle).copied()
    }

    /// Transfer frames the broker's session takes now.
    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    /// Links the broker has detached since the last call (each already answered).
    pub(crate) fn take_detached(&mut self) -> Vec<Detached> {
        std::mem::take(&mut self.detached)
    }

    /// Buffers one transfer frame on `handle` with as much of `payload` as the frame holds,
    /// always with `more` set: the first of a delivery when `delivery_id` is given, else a
    /// continuation. Returns the payload bytes it took. The caller checks
    /// [`RawClient::window`] (and, for a first frame, [`RawClient::credit`]) first.
    pub(crate) fn transfer(
        &mut self,
        handle: u32,
        delivery_id: Option<u32>,
        payload: &[u8],
    ) -> Result<usize, String> {
        let transfer = Transfer {
            handle,
            delivery_id,
            delivery_tag: delivery_id.map(|id| DeliveryTag::from_u64(u64::from(id))),
            message_format: delivery_id.map(|_| 0),
            settled: delivery_id.map(|_| false),
            more: true,
            ..Default::default()
        };
        // One frame, never more: each counts against the window.
        let room =
            (self.frame_max as usize).saturating_sub(FRAME_HEADER_SIZE + transfer.encoded_size());
        let taken = payload.len().min(room);
        let chunk = payload.get(..taken).unwrap_or_default();
        encode_transfer(&mut self.output, 0, &transfer, chunk, self.frame_max)
            .map_err(|e| e.to_string())?;
        if delivery_id.is_some() {
            let credit = self.credit.entry(handle).or_default();
            *credit = credit.saturating_sub(1);
        }
        self.next_outgoing_id = self.next_outgoing_id.wrapping_add(1);
        self.window = self.window.saturating_sub(1);
        Ok(taken)
    }

    /// Bytes buffered for the next [`RawClient::flush`].
    pub(crate) fn buffered(&self) -> usize {
        self.output.len()
    }

    /// Writes what is buffered (or a heartbeat when the connection has been quiet).
    pub(crate) async fn flush(&mut self) -> Result<(), String> {
        if self.output.is_empty()
            && self
                .heartbeat
                .is_some_and(|h| self.last_write.elapsed() >= h)
        {
            self.output.extend_from_slice(&EMPTY_FRAME);
        }
        if self.output.is_empty() {
            return Ok(());
        }
        self.stream
            .write_all(&self.output)
            .await
            .map_err(|e| format!("the broker dropped the connection while we wrote: {e}"))?;
        self.output.clear();
        self.last_write = Instant::now();
        Ok(())
    }

    /// Handles whatever the broker has sent, waiting up to `wait` for something to arrive.
    pub(crate) async fn poll(&mut self, wait: Duration) -> Result<(), String> {
        self.flush().await?;
        if let Ok(read) = tokio::time::timeout(wait, self.read_more()).await {
            read?;
        }
        while let Some(body) = self.decode()? {
            self.handle(body)?;
        }
        self.flush().await
    }

    /// Closes the connection and waits (up to `wait`) for the broker's close.
    pub(crate) async fn close(mut self, wait: Duration) {
        if self.write(&Close::default().into()).is_err() || self.flush().await.is_err() {
            return;
        }
        let until = Instant::now() + wait;
        while !self.closed && Instant::now() < until {
            if self.poll(Duration::from_millis(50)).await.is_err() {
                return;
            }
        }
    }

    fn handle(&mut self, body: FrameBody) -> Result<(), String> {
        let FrameBody::Amqp { performative, .. } = body else {
            return Ok(());
        };
        match performative {
            // Without a target it is a refusal, whose detach follows.
            Performative::Attach(a) if a.target.is_some() => {
                self.message_size_max
                    .insert(a.handle, a.max_message_size.unwrap_or(0));
                self.credit.entry(a.handle).or_default();
            }
            Performative::Flow(f) => {
                // Part 2 §2.5.6: the broker's window, counted from our next-outgoing-id.
                self.window = f
                    .next_incoming_id
                    .unwrap_or(0)
                    .wrapping_add(f.incoming_window)
                    .wrapping_sub(self.next_outgoing_id);
                if let (Some(handle), Some(credit)) = (f.handle, f.link_credit) {
                    // Each link starts one delivery, after the broker's first flow, so the
                    // broker's delivery-count and ours agree whenever its credit matters.
                    self.credit.insert(handle, credit);
                }
            }
            Performative::Detach(d) => {
                self.credit.remove(&d.handle);
                self.detached.push(Detached {
                    handle: d.handle,
                    error: d.error,
                });
                let answer = Detach {
                    handle: d.handle,
                    closed: d.closed,
                    error: None,
                };
                self.write(&answer.into())?;
            }
            Performative::End(e) => {
                self.ended = Some(format!("the broker ended the session: {}", why(e.error)));
            }
            Performative::Close(c) => {
                self.closed = true;
                if let Some(e) = c.error {
                    self.ended = Some(format!(
                        "the broker closed the connection: {}",
                        describe(&e)
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn write(&mut self, performative: &Performative) -> Result<(), String> {
        encode_performative(&mut self.output, 0, performative, self.frame_max)
            .map_err(|e| e.to_string())
    }

    async fn read_more(&mut self) -> Result<(), String> {
        self.input.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.input).await {
            Ok(0) => Err(self
                .ended
                .clone()
                .unwrap_or_else(|| "the broker dropped the connection".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("reading from the broker failed: {e}")),
        }
    }

    fn decode(&mut self) -> Result<Option<FrameBody>, String> {
        decode_frame(&mut self.input, FRAME_SIZE_MAX)
            .map(|f| f.map(|f| f.body))
            .map_err(|e| format!("the broker sent a frame we cannot decode: {e}"))
    }

    async fn next_frame(&mut self) -> Result<FrameBody, String> {
        loop {
            if let Some(body) = self.decode()? {
                return Ok(body);
            }
            self.read_more().await?;
        }
    }

    async fn expect_header(&mut self, want: ProtocolHeader) -> Result<(), String> {
        loop {
            match ProtocolHeader::decode(&self.input) {
                Ok(Some(h)) if h == want => {
                    let _ = self.input.split_to(8);
                    return Ok(());
                }
                Ok(Some(h)) => {
                    return Err(format!("the broker answered with protocol header {h:?}"));
                }
                Ok(None) => self.read_more().await?,
                Err(e) => return Err(format!("the broker's answer is not AMQP: {e}")),
            }
        }
    }
}

fn why(error: Option<Error>) -> String {
    error.as_ref().map_or("no reason given".into(), describe)
}
