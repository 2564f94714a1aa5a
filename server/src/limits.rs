//! Protection against clients that ask too much: request rates per address, per session and per
//! WebSocket connection (GCRA through `governor`), and caps on open WebSocket connections, in
//! total and per address. A request over a rate is answered `rate_limited` with when to retry
//! (HTTP 429 with `Retry-After`, or the WebSocket error's `retry_after_ms`); a connection over a
//! cap is refused before the upgrade. Every limit is a flag with a safe default; 0 turns it off.
//!
//! What counts as a request: every HTTP request except the site's static files, and every
//! WebSocket message (against its connection, its session and its address). An address is the
//! client's as [`crate::client_addr`] resolved it (behind a trusted proxy, the visitor's).
//!
//! Concurrency: the rate limiters are lock-free keyed maps (`governor` on `dashmap`); the
//! connection counts sit behind one small mutex, taken to open and to close a connection.
//! [`Limits::housekeeping`] forgets idle keys, so memory follows the active clients.

use crate::error::{AppError, JobError};
use app::error_code::ErrorCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The configured limits (from `crate::config::Config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitConfig {
    /// Requests per second per address (0 = no limit); bursts of twice that.
    pub per_ip: u32,
    /// Requests per second per session (0 = no limit); bursts of twice that.
    pub per_session: u32,
    /// WebSocket messages per second per connection (0 = no limit); bursts of twice that.
    pub per_connection: u32,
    /// Open WebSocket connections in all (0 = no cap).
    pub max_connections: usize,
    /// Open WebSocket connections per address (0 = no cap).
    pub max_connections_per_ip: usize,
}

fn quota(per_second: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// The server's limiters and connection counts.
pub struct Limits {
    config: LimitConfig,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_session: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    /// Open connections: in all, and by address.
    connections: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// An open connection's place among the caps; dropping it gives the place back.
pub struct ConnectionPlace {
    limits: Arc<Limits>,
    ip: Option<IpAddr>,
}

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        let mut c = self.limits.connections.lock();
        c.0 = c.0.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(n) = c.1.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    c.1.remove(&ip);
                }
            }
        }
    }
}

/// A per-connection message limiter.
pub struct ConnectionRate(Option<DefaultDirectRateLimiter>, DefaultClock);

impl ConnectionRate {
    /// `Err(wait)` when the connection is over its message rate.
    pub fn check(&self) -> Result<(), Duration> {
        match &self.0 {
            Some(l) => l.check().map_err(|nu| nu.wait_time_from(self.1.now())),
            None => Ok(()),
        }
    }
}

impl Limits {
    /// Limits as configured.
    pub fn new(config: LimitConfig) -> Arc<Self> {
        Arc::new(Limits {
            config,
            per_ip: quota(config.per_ip).map(DefaultKeyedRateLimiter::keyed),
            per_session: quota(config.per_session).map(DefaultKeyedRateLimiter::keyed),
            clock: DefaultClock::default(),
            connections: Mutex::new((0, HashMap::new())),
        })
    }

    /// One request from `ip` (if known) for `session`: `Err(wait)` when over a rate.
    pub fn check_request(&self, ip: Option<IpAddr>, session: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            l.check_key(&ip).map_err(|nu| nu.wait_time_from(now))?;
        }
        if let Some(l) = &self.per_session {
            l.check_key(&session.to_owned())
                .map_err(|nu| nu.wait_time_from(now))?;
        }
        Ok(())
    }

    /// A fresh limiter for one connection's messages.
    pub fn connection_rate(&self) -> ConnectionRate {
        ConnectionRate(
            quota(self.config.per_connection).map(DefaultDirectRateLimiter::direct),
            self.clock.clone(),
        )
    }

    /// A place for one more WebSocket connection from `ip`, or why not.
    pub fn open_connection(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
    ) -> Result<ConnectionPlace, String> {
        let mut c = self.connections.lock();
        if self.config.max_connections > 0 && c.0 >= self.config.max_connections {
            return Err(format!(
                "the server has its maximum of {} open connections",
                self.config.max_connections
            ));
        }
        if let Some(ip) = ip {
            let n = c.1.get(&ip).copied().unwrap_or(0);
            if self.config.max_connections_per_ip > 0 && n >= self.config.max_connections_per_ip {
                return Err(format!(
                    "your address has its maximum of {} open connections",
                    self.config.max_connections_per_ip
                ));
            }
            c.1.insert(ip, n + 1);
        }
        c.0 += 1;
        Ok(ConnectionPlace {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Forgets rate-limit state that has gone idle. Called periodically.
    pub fn housekeeping(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_session {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The error for a request over a rate.
pub fn rate_limited(wait: Duration) -> JobError {
    JobError::TooFast {
        retry_after: wait.max(Duration::from_millis(1)),
    }
}

/// The HTTP answer for a refused connection.
pub fn connection_refused(why: String) -> AppError {
    AppError {
        retry_after: Some(Duration::from_secs(5)),
        ..AppError::new(ErrorCode::RateLimited, format!("{why}; try again shortly"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: u32, per_session: u32, conns: usize, per_ip_conns: usize) -> Arc<Limits> {
        Limits::new(LimitConfig {
            per_ip,
            per_session,
            per_connection: 5,
            max_connections: conns,
            max_connections_per_ip: per_ip_conns,
        })
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_says_when_to_retry() {
        let l = limits(10, 0, 0, 0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..20 {
            assert!(
                l.check_request(Some(ip), "s").is_ok(),
                "the burst is twice the rate"
            );
        }
        let wait = l.check_request(Some(ip), "s").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(
            l.check_request(Some(other), "s").is_ok(),
            "another address is not affected"
        );
    }

    #[test]
    fn sessions_are_limited_apart_and_zero_means_no_limit() {
        let l = limits(0, 2, 0, 0);
        for _ in 0..4 {
            assert!(l.check_request(None, "a").is_ok());
        }
        assert!(l.check_request(None, "a").is_err());
        assert!(l.check_request(None, "b").is_ok());
        let open = limits(0, 0, 0, 0);
        for _ in 0..10_000 {
            assert!(open.check_request(None, "a").is_ok());
        }
        let rate = l.connection_rate();
        for _ in 0..10 {
            assert!(rate.check().is_ok());
        }
        assert!(rate.check().is_err(), "5 per second, bursts of 10");
    }

    #[test]
    fn connection_caps_count_in_all_and_per_address() {
        let l = limits(0, 0, 3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = l.open_connection(Some(a)).unwrap();
        let _a2 = l.open_connection(Some(a)).unwrap();
        assert!(l
            .open_connection(Some(a))
            .err()
            .unwrap()
            .contains("your address"));
        let _b1 = l.open_connection(Some(b)).unwrap();
        assert!(l
            .open_connection(Some(b))
            .err()
            .unwrap()
            .contains("maximum of 3"));
        drop(a1);
        assert!(l.open_connection(Some(a)).is_ok());
    }
}
