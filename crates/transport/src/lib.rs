//! Sluice's transports: TLS (rustls), the AMQP TLS header upgrade, and AMQP over WebSockets, as streams the connection task runs on (being built for issue 12).
