//! Which network interface the kernel sends a broker's traffic through: the replay cap is
//! lower on a cellular link (`[[network]] role = "cellular"` in the hardware profile), and the
//! route, not the broker's name, says whether the link is one.
//!
//! A UDP socket connected to the broker's address takes the kernel's route without sending a
//! packet; its local address names the interface (getifaddrs).

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

/// The interface the route to `host:port` leaves through (blocking: it may resolve `host`).
pub fn interface_towards(host: &str, port: u16) -> Option<String> {
    let target: SocketAddr = (host, port).to_socket_addrs().ok()?.next()?;
    let any: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = UdpSocket::bind(any).ok()?;
    socket.connect(target).ok()?;
    let local = socket.local_addr().ok()?.ip();
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let addr = ifa.address?;
        let ip = match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
            (Some(v4), _) => std::net::IpAddr::V4(v4.ip()),
            (_, Some(v6)) => std::net::IpAddr::V6(v6.ip()),
            _ => return None,
        };
        (ip == local).then_some(ifa.interface_name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_goes_through_lo() {
        assert_eq!(interface_towards("127.0.0.1", 1883).as_deref(), Some("lo"));
        assert_eq!(interface_towards("localhost", 1883).as_deref(), Some("lo"));
    }

    #[test]
    fn an_unresolvable_host_has_no_route() {
        assert_eq!(interface_towards("no-such-host.invalid", 1883), None);
    }
}
