//! Sluice's authentication and authorization: SASL mechanisms as sans-IO state machines, MessagingUser credentials, and the rights snapshot (being built for issue 12).
