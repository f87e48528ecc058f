//! `amqp://[user:password@]host[:port]/address`: where the harness connects and what to.

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchUrl {
    /// Host name or IP address.
    pub host: String,
    /// Port; 5672 when the URL gives none.
    pub port: u16,
    /// The address, which may hold `{n}` for the pair index.
    pub address: String,
    /// SASL PLAIN credentials; ANONYMOUS without them.
    pub credentials: Option<(String, String)>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `amqp://`.
    #[error("'{0}': only amqp:// URLs are supported (TLS, amqps://, comes with the broker's TLS)")]
    Scheme(String),
    /// No `/address` after the host.
    #[error("'{0}': the URL needs an address after the host, e.g. amqp://127.0.0.1:5672/q0")]
    NoAddress(String),
    /// An empty host.
    #[error("'{0}': no host")]
    NoHost(String),
    /// A port that is not a number.
    #[error("'{0}': the port is not a number from 1 to 65535")]
    Port(String),
}

impl BenchUrl {
    /// Parses `url`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let rest = url
            .strip_prefix("amqp://")
            .ok_or_else(|| UrlError::Scheme(url.to_string()))?;
        let (authority, address) = rest
            .split_once('/')
            .filter(|(_, a)| !a.is_empty())
            .ok_or_else(|| UrlError::NoAddress(url.to_string()))?;
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((user_pass, host_port)) => {
                let (user, pass) = user_pass.split_once(':').unwrap_or((user_pass, ""));
                (Some((user.to_string(), pass.to_string())), host_port)
            }
            None => (None, authority),
        };
        // `[::1]:5672` keeps its brackets off the host.
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| UrlError::Port(url.to_string()))?;
                (host, port)
            }
            _ => (host_port, 5672),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost(url.to_string()));
        }
        Ok(BenchUrl {
            host: host.to_string(),
            port,
            address: address.to_string(),
            credentials,
        })
    }

    /// The address for pair `index`: `{n}` replaced by it.
    pub fn address_for(&self, index: usize) -> String {
        self.address.replace("{n}", &index.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_url_parses() {
        let u = BenchUrl::parse("amqp://me:secret@broker.local:5673/queues/q{n}").unwrap();
        assert_eq!(u.host, "broker.local");
        assert_eq!(u.port, 5673);
        assert_eq!(u.address, "queues/q{n}");
        assert_eq!(u.credentials, Some(("me".into(), "secret".into())));
        assert_eq!(u.address_for(3), "queues/q3");
    }

    #[test]
    fn the_port_defaults_and_an_address_may_start_with_a_slash() {
        let u = BenchUrl::parse("amqp://127.0.0.1//queues/q0").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 5672));
        assert_eq!(u.address, "/queues/q0");
        assert_eq!(u.credentials, None);
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(matches!(
            BenchUrl::parse("amqps://h/q"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            BenchUrl::parse("amqp://h:5672"),
            Err(UrlError::NoAddress(_))
        ));
        assert!(matches!(
            BenchUrl::parse("amqp://h:x/q"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            BenchUrl::parse("amqp://:1/q"),
            Err(UrlError::NoHost(_))
        ));
    }
}
