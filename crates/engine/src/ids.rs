//! How the caller names sessions and links: by our own channel and handle numbers. The peer's
//! numbers are mapped to ours as its frames arrive, so the caller never sees them.

/// A session, by its local channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u16);

/// A link, by its session and local handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId {
    /// The session the link belongs to.
    pub session: SessionId,
    /// Our handle for it.
    pub handle: u32,
}
