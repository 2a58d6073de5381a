//! Where the service may send requests of its own (webhooks): never to loopback, private,
//! link-local, metadata, multicast or reserved addresses, unless the operator allows a range
//! explicitly (`webhook_allow_private`).
//!
//! A webhook URL is checked twice: at registration (an IP literal, a name such as
//! `localhost`, and whatever its name resolves to then), and at every delivery by the
//! webhook client's own resolver ([`GuardedResolver`]), which drops refused addresses before
//! connecting, so a name that later resolves to `127.0.0.1` or `169.254.169.254` (DNS
//! rebinding) is never reached. IP literals do not go through a resolver, so a delivery
//! checks them with [`EgressPolicy::check_url`] first.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Why an outbound address is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EgressRefused {
    #[error("{ip} is a {kind} address; webhooks go to public addresses only (an operator may allow a range with webhook_allow_private)")]
    Address { ip: IpAddr, kind: &'static str },
    #[error("{0} names this machine or its network; webhooks go to public addresses only")]
    LocalName(String),
    #[error("{host} resolves to no address webhooks may be sent to ({detail})")]
    NoAllowedAddress { host: String, detail: String },
}

/// The outbound address policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Ranges allowed although they are not public.
    pub allow: Vec<IpNet>,
}

/// The special-purpose class of an address, if it is not a public unicast one.
pub fn special_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return special_v4(v4);
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("private (unique local)")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation")
            } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
                // IPv4-compatible (deprecated) ::a.b.c.d
                Some("reserved")
            } else {
                None
            }
        }
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("cloud metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("protocol assignment")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else {
        None
    }
}

impl EgressPolicy {
    /// Whether the service may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), EgressRefused> {
        let Some(kind) = special_kind(ip) else {
            return Ok(());
        };
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        Err(EgressRefused::Address { ip, kind })
    }

    /// Check what a URL names without resolving it: an IP literal, or a local name.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), EgressRefused> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => self.check_name(d),
            None => Ok(()),
        }
    }

    fn check_name(&self, name: &str) -> Result<(), EgressRefused> {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        let local = n == "localhost"
            || n.ends_with(".localhost")
            || n.ends_with(".local")
            || n.ends_with(".internal")
            || n.ends_with(".home.arpa")
            || !n.contains('.');
        if local && self.allow.is_empty() {
            return Err(EgressRefused::LocalName(name.to_string()));
        }
        Ok(())
    }

    /// Keep the addresses the service may connect to; refused if none is left.
    pub fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, EgressRefused> {
        let mut refused = Vec::new();
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.check_ip(a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    refused.push(e.to_string());
                    false
                }
            })
            .collect();
        if kept.is_empty() {
            return Err(EgressRefused::NoAllowedAddress {
                host: host.to_string(),
                detail: if refused.is_empty() {
                    "no address".to_string()
                } else {
                    refused.join("; ")
                },
            });
        }
        Ok(kept)
    }

    /// The check at registration: the URL itself, then what its name resolves to now (a
    /// name that does not resolve yet is accepted; every delivery resolves it again).
    pub async fn check_registration(&self, url: &reqwest::Url) -> Result<(), EgressRefused> {
        self.check_url(url)?;
        if let Some(url::Host::Domain(d)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            if let Ok(addrs) = tokio::net::lookup_host((d, port)).await {
                self.filter(d, addrs.collect())?;
            }
        }
        Ok(())
    }
}

/// The webhook client's resolver: the system's, with refused addresses taken out.
#[derive(Clone, Debug)]
pub struct GuardedResolver(pub Arc<EgressPolicy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            policy.check_name(&host)?;
            // The port is replaced by the connector; 0 is what the lookup needs.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = policy.filter(&host, addrs)?;
            let it: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(it)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_special_range_is_refused_and_public_addresses_pass() {
        let p = EgressPolicy::default();
        for (addr, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.5", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
            ("2001:db8::1", "documentation"),
        ] {
            assert_eq!(
                p.check_ip(ip(addr)),
                Err(EgressRefused::Address { ip: ip(addr), kind }),
                "{addr}"
            );
        }
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(p.check_ip(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn an_operator_range_is_allowed_and_nothing_else() {
        let p = EgressPolicy {
            allow: vec!["10.20.0.0/16".parse().unwrap()],
        };
        assert_eq!(p.check_ip(ip("10.20.3.4")), Ok(()));
        assert!(p.check_ip(ip("10.21.0.1")).is_err());
        assert!(p.check_ip(ip("127.0.0.1")).is_err());
    }

    #[test]
    fn urls_naming_local_hosts_are_refused() {
        let p = EgressPolicy::default();
        for u in [
            "https://127.0.0.1/h",
            "https://[::1]:8443/h",
            "https://localhost/h",
            "https://api.localhost/h",
            "https://metadata.google.internal/computeMetadata",
            "https://printer.local/h",
            "https://intranet/h",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(p.check_url(&u.parse().unwrap()).is_err(), "{u}");
        }
        assert!(p
            .check_url(&"https://hooks.example.com/h".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn filtering_keeps_public_addresses_and_refuses_when_none_is_left() {
        let p = EgressPolicy::default();
        let a: SocketAddr = "93.184.216.34:443".parse().unwrap();
        let l: SocketAddr = "127.0.0.1:443".parse().unwrap();
        assert_eq!(p.filter("h", vec![l, a]).unwrap(), vec![a]);
        let e = p.filter("rebind.example", vec![l]).unwrap_err();
        assert!(e.to_string().contains("127.0.0.1 is a loopback address"), "{e}");
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        use reqwest::dns::Resolve;
        // `localhost` resolves to loopback on every machine; with an explicit allowance for
        // a range, the name check passes and the address filter is what refuses it.
        let p = Arc::new(EgressPolicy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
        });
        let r = GuardedResolver(p);
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let e = match r.resolve(name).await {
            Ok(_) => panic!("localhost was resolved"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("loopback"), "{e}");
    }
}
