//! The address filter: which IP addresses a connector may send to.
//!
//! A flow author or an upstream that controls a URL, a DNS answer or a
//! redirect could otherwise make Patchbay call inward: the loopback API of
//! this node, a database on the private network, the cloud metadata service
//! that hands out instance credentials. So every address a connector
//! connects to is classified, and inward ones (see [`classify`]) are refused
//! unless the connector opts in with `dangerous_allow_private` (`true`, or
//! CIDR blocks).
//!
//! The check sits where the address is known for certain, not on the URL
//! text: [`GuardedResolver`] is the HTTP client's DNS resolver, so a name is
//! judged by what it resolves to, at connect time, every time a connection
//! is made. A name resolving to `127.0.0.1` (`localhost`, a wildcard DNS
//! service, a rebinding attack whose second answer points inward) is caught
//! there, and refused addresses are dropped before the client sees them, so
//! no packet reaches them. The HTTP client skips its resolver for hosts that
//! are IP literals, so [`AddressFilter::check_url`] judges those before each
//! request and each redirect hop; the URL parser has already normalised odd
//! spellings (`http://2130706433/`, `http://0x7f.1/`) to an address.
//!
//! IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`,
//! compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged
//! by the IPv4 address inside, since that is where the packets go.
//!
//! With `dangerous_allow_private: true` there is no filter at all: the
//! client keeps its default resolver and no check runs on the request path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use patchbay_config::AllowPrivate;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address counts as inward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), IPv6 unique local
    /// (`fc00::/7`) and site-local (`fec0::/10`), NAT64 local use.
    Private,
    /// Carrier-grade NAT, `100.64.0.0/10` (RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud provider's instance metadata service (`169.254.169.254`,
    /// `fd00:ec2::254`, `169.254.170.2`), which hands out credentials.
    CloudMetadata,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `0.0.0.0/8`, `::`: "this host", which reaches the loopback interface.
    Unspecified,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`: never a real upstream.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `192.0.0.0/24`, `240.0.0.0/4`, `100::/64`: reserved for protocols or
    /// future use.
    Reserved,
}

impl AddressKind {
    /// The kind as a phrase: "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            AddressKind::Loopback => "a loopback address",
            AddressKind::Private => "a private address",
            AddressKind::SharedAddressSpace => "a carrier-grade NAT address",
            AddressKind::LinkLocal => "a link-local address",
            AddressKind::CloudMetadata => "the cloud metadata service",
            AddressKind::Multicast => "a multicast address",
            AddressKind::Unspecified => "the unspecified address",
            AddressKind::Broadcast => "the broadcast address",
            AddressKind::Documentation => "a documentation address",
            AddressKind::Benchmarking => "a benchmarking address",
            AddressKind::Reserved => "a reserved address",
        }
    }
}

/// Whether `ip` is inward, and why; `None` for an ordinary public address.
pub fn classify(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        // Checked before link-local, which contains them.
        (169, 254, 169, 254) | (169, 254, 170, 2) => AddressKind::CloudMetadata,
        (0, ..) => AddressKind::Unspecified,
        _ if ip.is_loopback() => AddressKind::Loopback,
        _ if ip.is_private() => AddressKind::Private,
        (100, 64..=127, ..) => AddressKind::SharedAddressSpace,
        _ if ip.is_link_local() => AddressKind::LinkLocal,
        _ if ip.is_broadcast() => AddressKind::Broadcast,
        _ if ip.is_multicast() => AddressKind::Multicast,
        _ if ip.is_documentation() => AddressKind::Documentation,
        (198, 18..=19, ..) => AddressKind::Benchmarking,
        (192, 0, 0, _) | (240..=255, ..) => AddressKind::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    Some(match segments {
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => AddressKind::CloudMetadata,
        _ if ip.is_unspecified() => AddressKind::Unspecified,
        _ if ip.is_loopback() => AddressKind::Loopback,
        _ if ip.is_unique_local() => AddressKind::Private,
        // NAT64 local use (RFC 8215) and deprecated site-local.
        [0x0064, 0xff9b, 0x0001, ..] => AddressKind::Private,
        [s, ..] if s & 0xffc0 == 0xfec0 => AddressKind::Private,
        _ if ip.is_unicast_link_local() => AddressKind::LinkLocal,
        _ if ip.is_multicast() => AddressKind::Multicast,
        [0x2001, 0x0db8, ..] => AddressKind::Documentation,
        [s, ..] if s & 0xfff0 == 0x3ff0 => AddressKind::Documentation,
        [0x2001, 0x0002, 0, ..] => AddressKind::Benchmarking,
        [0x0100, 0, 0, 0, ..] => AddressKind::Reserved,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address delivers to, for the forms that carry
/// one: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`, not `::` or
/// `::1`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(low),
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, ..] => Some(low),
        [0x0064, 0xff9b, 0, 0, 0, 0, ..] => Some(low),
        [0x2002, high, low16, ..] => Some(Ipv4Addr::new(
            (high >> 8) as u8,
            high as u8,
            (low16 >> 8) as u8,
            low16 as u8,
        )),
        _ => None,
    }
}

/// An address a connector may not reach: the host as written (or the name
/// that resolved to it), the address and why it is inward.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{host}` is {address}, {}", .kind.describe())]
pub struct AddressRefusal {
    pub host: String,
    pub address: IpAddr,
    pub kind: AddressKind,
}

impl AddressRefusal {
    /// The narrowest `dangerous_allow_private` entry that would allow it.
    pub fn allowing_cidr(&self) -> String {
        match self.address {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => format!("{v4}/32"),
                None => format!("{v6}/128"),
            },
        }
    }
}

/// The inward addresses one connector may reach.
#[derive(Clone, Debug)]
pub(crate) enum AddressFilter {
    /// `dangerous_allow_private: true`: no check at all.
    DangerAllowAll,
    /// Inward addresses are refused unless inside one of these blocks
    /// (none by default).
    Refuse { allowed: Arc<[IpNet]> },
}

impl AddressFilter {
    /// The filter of `dangerous_allow_private`; a CIDR that does not parse
    /// is an error (`patchbay check` reports it with its line).
    pub(crate) fn build(allow: &AllowPrivate) -> Result<AddressFilter, String> {
        Ok(match allow {
            // Whoever wrote `true` takes over the check for this connector.
            AllowPrivate::All(true) => AddressFilter::DangerAllowAll,
            AllowPrivate::All(false) => AddressFilter::Refuse {
                allowed: Arc::from([]),
            },
            AllowPrivate::Cidrs(cidrs) => AddressFilter::Refuse {
                allowed: cidrs
                    .iter()
                    .map(|cidr| AllowPrivate::parse_cidr(cidr))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("dangerous_allow_private: {e}"))?
                    .into(),
            },
        })
    }

    /// Whether `address`, reached through `host`, may be connected to.
    pub(crate) fn check(&self, host: &str, address: IpAddr) -> Result<(), AddressRefusal> {
        let AddressFilter::Refuse { allowed } = self else {
            // DangerAllowAll: the connector opted out of the check.
            return Ok(());
        };
        let Some(kind) = classify(address) else {
            return Ok(());
        };
        // A mapped address is allowed by a block written either way.
        let canonical = address.to_canonical();
        if allowed
            .iter()
            .any(|net| net.contains(&address) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(AddressRefusal {
            host: host.to_string(),
            address,
            kind,
        })
    }

    /// Checks a URL whose host is an IP literal, which the HTTP client
    /// connects to without asking the resolver. Names pass here and are
    /// judged by [`GuardedResolver`].
    pub(crate) fn check_url(&self, url: &reqwest::Url) -> Result<(), AddressRefusal> {
        if matches!(self, AddressFilter::DangerAllowAll) {
            // Opted out: not even the host is looked at.
            return Ok(());
        }
        let address = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) | None => return Ok(()),
        };
        self.check(url.host_str().unwrap_or_default(), address)
    }

    /// The resolver the connector's HTTP client uses; `None` when every
    /// address is allowed and the default resolver will do.
    pub(crate) fn resolver(&self) -> Option<Arc<GuardedResolver>> {
        match self {
            // Opted out: the client's default resolver, nothing added.
            AddressFilter::DangerAllowAll => None,
            AddressFilter::Refuse { .. } => Some(Arc::new(GuardedResolver {
                filter: self.clone(),
            })),
        }
    }
}

/// A DNS resolver that drops the addresses its [`AddressFilter`] refuses.
/// When every address of a name is refused, resolution fails with the
/// [`AddressRefusal`] of the first, which the connector finds in the error's
/// source chain and reports as such.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    filter: AddressFilter,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let filter = self.filter.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            // The system resolver (getaddrinfo, on the blocking pool), as
            // the client's default one uses.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut kept: Vec<SocketAddr> = Vec::new();
            let mut refused = None;
            for address in resolved {
                match filter.check(&host, address.ip()) {
                    Ok(()) => kept.push(address),
                    Err(refusal) => {
                        refused.get_or_insert(refusal);
                    }
                }
            }
            match (kept.is_empty(), refused) {
                (true, Some(refusal)) => Err(Box::new(refusal) as _),
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}

/// The refusal somewhere in an error's source chain, if the error is one.
pub(crate) fn find_refusal<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a AddressRefusal> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refusal) = error.downcast_ref::<AddressRefusal>() {
            return Some(refusal);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<AddressKind> {
        classify(text.parse().unwrap())
    }

    #[test]
    fn inward_addresses_are_classified() {
        use AddressKind::*;
        let table = [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("64:ff9b:1::1", Some(Private)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("169.254.0.1", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.170.2", Some(CloudMetadata)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("255.255.255.255", Some(Broadcast)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.1", Some(Documentation)),
            ("203.0.113.1", Some(Documentation)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("2001:2::1", Some(Benchmarking)),
            ("192.0.0.8", Some(Reserved)),
            ("240.0.0.1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            // IPv6 forms carrying an IPv4 address are judged by it.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::127.0.0.1", Some(Loopback)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(CloudMetadata)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            // Public addresses, including ones next to inward blocks.
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("172.32.0.1", None),
            ("172.15.255.255", None),
            ("100.63.255.255", None),
            ("100.128.0.1", None),
            ("169.253.255.255", None),
            ("198.17.255.255", None),
            ("198.20.0.1", None),
            ("223.255.255.255", None),
            ("2606:4700::1111", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
            ("2001:db9::1", None),
        ];
        for (address, expected) in table {
            assert_eq!(kind(address), expected, "{address}");
        }
    }

    fn filter(allow: AllowPrivate) -> AddressFilter {
        AddressFilter::build(&allow).unwrap()
    }

    #[test]
    fn cidrs_allow_exactly_their_range() {
        let cidrs = filter(AllowPrivate::Cidrs(vec![
            "127.0.0.1/32".into(),
            "10.1.0.0/16".into(),
            "fd00::/8".into(),
        ]));
        let allowed = |text: &str| cidrs.check("h", text.parse().unwrap()).is_ok();
        assert!(allowed("127.0.0.1"));
        assert!(
            allowed("::ffff:127.0.0.1"),
            "the mapped form of an allowed address"
        );
        assert!(!allowed("127.0.0.2"));
        assert!(allowed("10.1.255.255"));
        assert!(!allowed("10.2.0.0"));
        assert!(allowed("fd00::1"));
        assert!(!allowed("fc00::1"));
        assert!(!allowed("169.254.169.254"));
        assert!(allowed("8.8.8.8"), "public addresses need no opt-in");

        let none = filter(AllowPrivate::All(false));
        assert!(none.check("h", "127.0.0.1".parse().unwrap()).is_err());
        assert!(none.check("h", "8.8.8.8".parse().unwrap()).is_ok());
        let all = filter(AllowPrivate::All(true));
        assert!(all.check("h", "169.254.169.254".parse().unwrap()).is_ok());
        assert!(all.resolver().is_none(), "no resolver to pay for");
    }

    #[test]
    fn bad_cidrs_are_refused_at_build() {
        let error =
            AddressFilter::build(&AllowPrivate::Cidrs(vec!["10.0.0.0/33".into()])).unwrap_err();
        assert!(error.contains("`10.0.0.0/33`"), "{error}");
    }

    #[test]
    fn literal_hosts_in_any_spelling_are_checked() {
        let none = filter(AllowPrivate::All(false));
        for url in [
            "http://127.0.0.1:8080/x",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]:9/",
            "http://0.0.0.0/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(none.check_url(&url).is_err(), "{url}");
        }
        let named = reqwest::Url::parse("http://localhost/").unwrap();
        assert!(
            none.check_url(&named).is_ok(),
            "names are judged after resolution"
        );
    }

    #[test]
    fn the_refusal_names_host_address_and_kind() {
        let refusal = filter(AllowPrivate::All(false))
            .check("localhost", "::ffff:127.0.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "`localhost` is ::ffff:127.0.0.1, a loopback address"
        );
        assert_eq!(refusal.allowing_cidr(), "127.0.0.1/32");
    }
}
