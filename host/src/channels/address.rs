//! Which addresses a tenant's channel may reach. Loopback, private, link-local, shared (CGNAT),
//! unspecified and multicast addresses are refused, unless the operator's allow-list
//! (`delivery.allow_private`, CIDR blocks) holds them: a tenant must not reach the deployment's
//! own network. URLs are checked when saved; every connection is checked again after DNS
//! resolution, so a name that later resolves inward is refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<(IpAddr, u8)>,
}

impl AddressPolicy {
    /// A policy allowing the given CIDR blocks (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`).
    pub fn new(blocks: &[String]) -> Result<Self, String> {
        let allowed = blocks
            .iter()
            .map(|block| {
                let (ip, bits) = block.split_once('/').ok_or_else(|| format!("`{block}` is not a CIDR block"))?;
                let ip: IpAddr = ip.parse().map_err(|_| format!("`{block}` does not start with an IP address"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits: u8 =
                    bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| format!("`{block}`: bad prefix"))?;
                Ok((ip, bits))
            })
            .collect::<Result<_, String>>()?;
        Ok(AddressPolicy { allowed })
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|(block, bits)| contains(*block, *bits, ip))
    }

    /// Checks a channel URL: http or https, a host, and no refused literal address.
    pub fn check_url(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        let ip = match parsed.host() {
            None => return Err("must name a host".into()),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
                Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
            }
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(ip) = ip
            && !self.allows(ip)
        {
            return Err(refusal(ip));
        }
        Ok(parsed)
    }
}

fn refusal(ip: IpAddr) -> String {
    format!(
        "{ip} is a private, loopback or link-local address; Klaxon does not deliver there unless the operator \
         allows it (delivery.allow_private)"
    )
}

/// An IPv4 address carried in IPv6 is judged as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

fn contains(block: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (block, ip) {
        (IpAddr::V4(b), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(b) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(b), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(b) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// reqwest's resolver, keeping only the addresses the policy allows.
pub struct GuardedResolver(pub Arc<AddressPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| policy.allows(a.ip())).collect();
            match (allowed.is_empty(), found.first()) {
                (true, Some(refused)) => Err(format!("{} resolves to {}", name.as_str(), refusal(refused.ip())).into()),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_refused_unless_allowed() {
        let strict = AddressPolicy::default();
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost/",
            "https://10.1.2.3/",
            "http://169.254.169.254/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://100.64.0.1/",
            "http://[::ffff:192.168.0.1]/",
        ] {
            assert!(strict.check_url(url).unwrap_err().contains("allow_private"), "{url}");
        }
        assert!(strict.check_url("https://hooks.example.com/x").is_ok());
        assert!(strict.check_url("https://93.184.216.34/").is_ok());
        assert!(strict.check_url("ftp://example.com/").unwrap_err().contains("http"));
        let lenient = AddressPolicy::new(&["127.0.0.0/8".into(), "fd00::/8".into()]).unwrap();
        assert!(lenient.check_url("http://127.0.0.1:9/x").is_ok());
        assert!(lenient.check_url("http://[fd00::1]/").is_ok());
        assert!(lenient.check_url("http://10.0.0.1/").is_err());
        assert!(AddressPolicy::new(&["127.0.0.1".into()]).is_err());
        assert!(AddressPolicy::new(&["127.0.0.1/33".into()]).is_err());
    }
}
