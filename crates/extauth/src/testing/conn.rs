//! One connection to the fake server: SASL on the engine, then the open exchange.
//!
//! The engine's server answers a client's `open` at once with the `open` its `Config` holds,
//! before the caller sees the client's: it cannot choose its offered capabilities by what the
//! client desires. So after SASL the fake reads the client's AMQP header and `open` itself
//! (with the codec), and only then starts a second, SASL-less engine configured for this
//! client, feeding it those same bytes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_codec::SaslCode;
use sluice_codec::Value;
use sluice_codec::composite::Fields;
use sluice_codec::frame::{FrameBody, decode_frame};
use sluice_codec::transport::{Open, Performative};
use sluice_codec::types::{Array, ElementType, Symbol};
use sluice_engine::{Config, Connection, Event, SaslConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{FakeUser, Shared, X_TEST_CHALLENGE};
use crate::ADDRESS_AUTHZ;

/// A connection to the fake server lasts at most this long.
pub(super) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame the fake reads.
const FRAME_SIZE_MAX: u32 = 64 * 1024;
const READ_BYTES: usize = 16 * 1024;

/// Serves one connection until it ends.
pub(super) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, shared: Arc<Shared>) {
    let Some((name, user)) = sasl(&mut io, &shared).await else {
        return;
    };
    amqp(&mut io, &name, &user, &shared).await;
}

/// Where the SASL exchange stands.
enum Pending {
    /// Waiting for `sasl-init`.
    Init,
    /// X-TEST-CHALLENGE: challenged this username, waiting for the password.
    Password(String),
}

/// Runs SASL; returns the user when it passed.
async fn sasl<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    shared: &Shared,
) -> Option<(String, FakeUser)> {
    let mut config = Config::server("fake-extauth");
    config.sasl = SaslConfig::Server {
        mechanisms: shared
            .config
            .mechanisms
            .iter()
            .filter_map(|m| Symbol::from_ascii(Bytes::copy_from_slice(m.as_bytes())).ok())
            .collect(),
        allow_no_sasl: false,
    };
    let challenge_frame = u32::try_from(shared.config.challenge.len() + 64).unwrap_or(u32::MAX);
    config.sasl_frame_size_max = config.sasl_frame_size_max.max(challenge_frame);
    let mut engine = Connection::server(config, Instant::now());
    let mut pending = Pending::Init;
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let now = Instant::now();
        let mut verdict = None;
        while let Some(event) = engine.poll_event() {
            let user = match event {
                Event::SaslInit {
                    mechanism,
                    initial_response,
                    hostname,
                } => {
                    if let Ok(mut h) = shared.hostnames.lock() {
                        h.push(hostname.map(|h| h.as_str().to_string()));
                    }
                    let response = initial_response.unwrap_or_default();
                    match mechanism.as_str() {
                        "PLAIN" => Some(plain(&response)),
                        X_TEST_CHALLENGE => {
                            let name = String::from_utf8_lossy(&response).into_owned();
                            pending = Pending::Password(name);
                            engine.sasl_challenge(shared.config.challenge.clone(), now);
                            None
                        }
                        _ => Some(None),
                    }
                }
                Event::SaslResponse { response } => match &pending {
                    Pending::Password(name) => {
                        let password = String::from_utf8_lossy(&response).into_owned();
                        Some(Some((name.clone(), password)))
                    }
                    Pending::Init => Some(None),
                },
                Event::Failed(_) | Event::RemoteClose { .. } => return None,
                _ => None,
            };
            if let Some(credentials) = user {
                let found = credentials.and_then(|(name, password)| {
                    let user = shared.config.users.get(&name)?;
                    (user.password == password).then(|| (name, user.clone()))
                });
                let code = if found.is_some() {
                    SaslCode::Ok
                } else {
                    SaslCode::Auth
                };
                engine.sasl_outcome(code, now);
                verdict = Some(found);
            }
        }
        let out = engine.take_output();
        if io.write_all(&out).await.is_err() {
            return None;
        }
        if let Some(found) = verdict {
            return found;
        }
        if engine.is_done() {
            return None;
        }
        match io.read(&mut buf).await {
            Ok(n) if n > 0 => engine.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
            _ => return None,
        }
    }
}

/// PLAIN's `authzid NUL authcid NUL password` (RFC 4616 §2).
fn plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let name = std::str::from_utf8(parts.next()?).ok()?;
    let password = std::str::from_utf8(parts.next()?).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((name.to_string(), password.to_string()))
}

/// The open exchange and the close, for an authenticated user.
async fn amqp<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    name: &str,
    user: &FakeUser,
    shared: &Shared,
) {
    let mut input = BytesMut::new();
    let mut buf = vec![0u8; READ_BYTES];
    let open = loop {
        if let Some(open) = peek_open(&input) {
            break open;
        }
        if input.len() > FRAME_SIZE_MAX as usize + 8 {
            return;
        }
        match io.read(&mut buf).await {
            Ok(n) if n > 0 => input.extend_from_slice(buf.get(..n).unwrap_or_default()),
            _ => return,
        }
    };
    let Some(open) = open else { return };
    let desires_authz = open
        .desired_capabilities
        .iter()
        .any(|c| c.as_str() == ADDRESS_AUTHZ);
    let mut config = Config::server("fake-extauth");
    config.sasl = SaslConfig::None;
    config.frame_size_max = FRAME_SIZE_MAX;
    config.properties = Some(properties(name, user, desires_authz));
    if desires_authz {
        config.offered_capabilities = vec![Symbol::from_static(ADDRESS_AUTHZ)];
    }
    let mut engine = Connection::server(config, Instant::now());
    engine.handle_input(&input, Instant::now());
    loop {
        while let Some(event) = engine.poll_event() {
            if matches!(event, Event::RemoteClose { .. }) {
                shared.closes.fetch_add(1, Ordering::SeqCst);
            }
        }
        let out = engine.take_output();
        if io.write_all(&out).await.is_err() || engine.is_done() {
            return;
        }
        match io.read(&mut buf).await {
            Ok(n) if n > 0 => engine.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
            _ => return,
        }
    }
}

/// The client's `open`, once its AMQP header and first frame are buffered: `None` while more
/// bytes are needed, `Some(None)` when what arrived is not an open.
fn peek_open(input: &BytesMut) -> Option<Option<Box<Open>>> {
    let mut frames = BytesMut::from(input.get(8..)?);
    match decode_frame(&mut frames, FRAME_SIZE_MAX) {
        Ok(None) => None,
        Ok(Some(frame)) => Some(match frame.body {
            FrameBody::Amqp {
                performative: Performative::Open(open),
                ..
            } => Some(open),
            _ => None,
        }),
        Err(_) => Some(None),
    }
}

/// The connection properties of EnMasse's external authentication server API.
fn properties(name: &str, user: &FakeUser, address_authz: bool) -> Fields {
    let identity = Value::Map(vec![
        (
            Value::from("sub"),
            Value::from(format!("sub-{name}").as_str()),
        ),
        (Value::from("preferred_username"), Value::from(name)),
    ]);
    let groups = Value::List(
        user.groups
            .iter()
            .map(|g| Value::from(g.as_str()))
            .collect(),
    );
    let mut fields = vec![
        (Symbol::from_static("authenticated-identity"), identity),
        (Symbol::from_static("groups"), groups),
    ];
    if address_authz {
        let authz = user
            .address_authz
            .iter()
            .map(|(pattern, ops)| {
                let ops = ops.iter().map(|o| Value::from(o.as_str())).collect();
                let array = Array::new(ElementType::String, ops)
                    .map(Value::Array)
                    .unwrap_or(Value::Null);
                (Value::from(pattern.as_str()), array)
            })
            .collect();
        fields.push((Symbol::from_static("address-authz"), Value::Map(authz)));
    }
    fields
}
