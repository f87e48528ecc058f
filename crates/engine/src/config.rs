//! Connection configuration: built once, with safe defaults, and a named limit for everything a
//! peer could otherwise make the engine hold.

use std::time::Duration;

use bytes::Bytes;
use sluice_codec::types::Symbol;

/// How a connection authenticates, seen from its own side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslConfig {
    /// No SASL layer: the connection starts with the AMQP header.
    None,
    /// A server offering these mechanisms, most preferred first. Whether a peer may skip SASL
    /// and send the AMQP header directly is `allow_no_sasl`.
    Server {
        /// Mechanisms offered in `sasl-mechanisms`.
        mechanisms: Vec<Symbol>,
        /// Accept a client that opens without a SASL layer.
        allow_no_sasl: bool,
    },
    /// A client that will use `mechanism` with this initial response.
    Client {
        /// The mechanism to choose; the connection fails if the server does not offer it.
        mechanism: Symbol,
        /// The initial response (for PLAIN: `\0user\0password`).
        initial_response: Option<Bytes>,
    },
}

/// The settings and limits of one connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our container id, sent in `open`.
    pub container_id: String,
    /// The hostname a client asks for in `sasl-init` and `open`.
    pub hostname: Option<String>,
    /// SASL layer.
    pub sasl: SaslConfig,
    /// Largest frame we accept, advertised in `open` (part 2 §2.7.1; at least 512).
    pub frame_size_max: u32,
    /// Highest channel number we accept, advertised in `open`.
    pub channel_max: u16,
    /// Close the connection when the peer has been silent this long; advertised in `open` so
    /// the peer sends heartbeats. `None` disables it.
    pub idle_timeout: Option<Duration>,
    /// Largest SASL frame accepted. The spec's default minimum is 512 bytes, but a Kubernetes
    /// service-account token alone is 1 to 2 KiB.
    pub sasl_frame_size_max: u32,
    /// Time allowed from the first byte to a completed open exchange.
    pub handshake_timeout: Duration,
    /// Time allowed for the peer to answer our `close` before the connection is dropped.
    pub close_timeout: Duration,
    /// Capabilities offered in `open` (a broker offers `ANONYMOUS-RELAY`, for instance).
    pub offered_capabilities: Vec<Symbol>,
    /// Capabilities desired in `open`.
    pub desired_capabilities: Vec<Symbol>,
    /// Connection properties sent in `open` (product, version).
    pub properties: Option<sluice_codec::composite::Fields>,
    /// Incoming and outgoing session window, in transfer frames (part 2 §2.5.6).
    pub session_window: u32,
    /// Highest link handle per session: at most this many links plus one.
    pub link_handle_max: u32,
    /// Unsettled deliveries per link, each way: a consumer that never settles stops receiving
    /// (`SendError::TooManyUnsettled`), a producer past it is detached.
    pub link_unsettled_max: u32,
    /// Accept links whose sender asks us to settle second (exactly once); the caller must then
    /// settle only after the sender has.
    pub receiver_settle_second: bool,
    /// Largest message we accept on a receiving link, reassembled from its transfers (0: none).
    pub message_size_max: u64,
    /// Memory all unfinished deliveries of the connection may hold together, across every
    /// link: what their transfers so far really take (kept frames, copy chunks, part lists),
    /// so neither more links nor smaller frames multiply it. A link whose transfer would go
    /// past it is detached with `amqp:resource-limit-exceeded`. Keep it above
    /// `message_size_max`, or messages near that size can never arrive.
    pub partial_bytes_max: usize,
    /// Bytes of unwritten output after which [`crate::Connection::is_output_full`] tells the IO
    /// shell to stop feeding input until the peer reads.
    pub output_buffer_max: usize,
}

impl Config {
    /// Defaults for a server (broker) connection.
    pub fn server(container_id: impl Into<String>) -> Self {
        Config {
            container_id: container_id.into(),
            hostname: None,
            sasl: SaslConfig::Server {
                mechanisms: vec![
                    Symbol::from_static("ANONYMOUS"),
                    Symbol::from_static("PLAIN"),
                ],
                allow_no_sasl: true,
            },
            frame_size_max: FRAME_SIZE_MAX_DEFAULT,
            channel_max: CHANNEL_MAX_DEFAULT,
            idle_timeout: Some(Duration::from_secs(60)),
            sasl_frame_size_max: SASL_FRAME_SIZE_MAX_DEFAULT,
            handshake_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            output_buffer_max: OUTPUT_BUFFER_MAX_DEFAULT,
            offered_capabilities: Vec::new(),
            desired_capabilities: Vec::new(),
            properties: None,
            session_window: SESSION_WINDOW_DEFAULT,
            link_handle_max: LINK_HANDLE_MAX_DEFAULT,
            message_size_max: MESSAGE_SIZE_MAX_DEFAULT,
            partial_bytes_max: PARTIAL_BYTES_MAX_DEFAULT,
            link_unsettled_max: LINK_UNSETTLED_MAX_DEFAULT,
            receiver_settle_second: false,
        }
    }

    /// Defaults for a client connection, authenticating with `sasl`.
    pub fn client(container_id: impl Into<String>, sasl: SaslConfig) -> Self {
        Config {
            sasl,
            ..Config::server(container_id)
        }
    }
}

/// Default largest frame: 64 KiB, large enough that a transfer carries a typical message in one
/// frame and small enough that one peer cannot make us buffer much for a single frame.
pub const FRAME_SIZE_MAX_DEFAULT: u32 = 64 * 1024;
/// Default highest channel: 255 sessions per connection.
pub const CHANNEL_MAX_DEFAULT: u16 = 255;
/// Default largest SASL frame: room for a service-account token.
pub const SASL_FRAME_SIZE_MAX_DEFAULT: u32 = 8 * 1024;
/// Default output buffered for a slow peer: 4 MiB.
pub const OUTPUT_BUFFER_MAX_DEFAULT: usize = 4 * 1024 * 1024;
/// Default session window: 2,048 transfer frames in flight each way.
pub const SESSION_WINDOW_DEFAULT: u32 = 2048;
/// Default highest link handle: 4,096 links per session.
pub const LINK_HANDLE_MAX_DEFAULT: u32 = 4095;
/// Default largest incoming message: 100 MiB.
pub const MESSAGE_SIZE_MAX_DEFAULT: u64 = 100 * 1024 * 1024;
/// Default memory for a connection's unfinished deliveries: 128 MiB. One message of the
/// default largest size (100 MiB, held at about 1 % over its size) fits with room for other
/// links' smaller ones, and a client cannot make one connection hold much more than its largest
/// message however many links it opens.
pub const PARTIAL_BYTES_MAX_DEFAULT: usize = 128 * 1024 * 1024;
/// Default unsettled deliveries per link: 10,000.
pub const LINK_UNSETTLED_MAX_DEFAULT: u32 = 10_000;
